// `promtool check metrics` (Prometheus' own parser and linter) accepts everything we expose.
#include "gtest/gtest.h"
#include "metrics/quantd_metrics.h"
#include "metrics/registry.h"
#include "testing/promtool.h"

namespace quantd::metrics {
namespace {

using testing::PromtoolCheckMetrics;
using testing::PromtoolResult;

TEST(PromtoolTest, DetectsAProblemWhenThereIsOne) {
  // The control: a hand-written exposition promtool must reject, so a silent promtool cannot pass.
  PromtoolResult result =
      PromtoolCheckMetrics("# HELP requests Requests.\n# TYPE requests counter\nrequests 1\n");
  EXPECT_NE(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("_total"), std::string::npos) << result.output;
}

TEST(PromtoolTest, AcceptsEveryMetricTypeWithTrickyLabelValues) {
  Registry registry;
  auto counters = registry.AddCounterFamily("demo_requests_total", "Requests \"served\".\n\\o/",
                                            {"method", "code"});
  auto gauges = registry.AddGaugeFamily("demo_temperature_celsius", "Temperature.", {"sensor"});
  auto histograms = registry.AddHistogramFamily("demo_request_duration_seconds", "Latency.",
                                                {"path"}, {0.001, 0.01, 0.1, 1, 10});
  auto plain = registry.AddGaugeFamily("demo_up", "Unlabelled gauge.");
  ASSERT_TRUE(counters.ok() && gauges.ok() && histograms.ok() && plain.ok());
  for (const char* tricky : {"", "a\"b", "back\\slash", "new\nline", "{curly}=,",
                             "ünï 日本 🙂", "le=\"1\"", "# not a comment"}) {
    (*(*counters)->Add({{"method", tricky}, {"code", "OK"}}))->Increment(1e12);
    (*(*gauges)->Add({{"sensor", tricky}}))->Set(-273.15);
    Histogram* h = *(*histograms)->Add({{"path", tricky}});
    for (double v : {0.0005, 0.001, 0.5, 20.0}) h->Observe(v);
  }
  (*(*gauges)->Add({{"sensor", "inf"}}))->Set(HUGE_VAL);
  (*(*gauges)->Add({{"sensor", "nan"}}))->Set(std::nan(""));
  PromtoolResult result = PromtoolCheckMetrics(registry.Serialize());
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(result.output, "");
}

TEST(PromtoolTest, AcceptsQuantdServerAndWorkerMetrics) {
  Registry registry;
  auto server = ServerMetrics::Create(registry);
  ASSERT_TRUE(server.ok()) << server.status();
  auto worker = WorkerMetrics::Create(registry);
  ASSERT_TRUE(worker.ok()) << worker.status();
  (*server)->jobs_submitted.Increment();
  (*server)->JobsFinished(JobOutcome::kFailed).Increment();
  (*server)->JobDuration(JobOutcome::kSucceeded).Observe(42);
  (*server)->ObserveGrpcRequest("SubmitJob", "INVALID_ARGUMENT", 0.002);
  (*server)->ObserveStoreOperation("append_event", 0.0003);
  (*(*worker)->gpu_memory_used_bytes.Add({{"gpu", "0"}}))->Set(3.5e9);
  (*worker)->layer_duration_seconds.Observe(12);
  PromtoolResult result = PromtoolCheckMetrics(registry.Serialize());
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(result.output, "");
}

}  // namespace
}  // namespace quantd::metrics
