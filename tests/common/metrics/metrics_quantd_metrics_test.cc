// The declared quantd metrics: present from start-up, with the conventional names and labels.
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "metrics/quantd_metrics.h"

namespace quantd::metrics {
namespace {

using ::testing::Each;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

TEST(QuantdMetricsTest, ServerExportsItsMetricsAsZeroBeforeAnyActivity) {
  Registry registry;
  auto metrics = ServerMetrics::Create(registry);
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  std::string text = registry.Serialize();
  EXPECT_THAT(text, HasSubstr("quantd_jobs_submitted_total 0\n"));
  EXPECT_THAT(text, HasSubstr("quantd_jobs_finished_total{outcome=\"cancelled\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("quantd_jobs{state=\"queued\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("quantd_gpus{state=\"free\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("quantd_job_queue_wait_seconds_count 0\n"));
  EXPECT_THAT(text, HasSubstr("quantd_build_info{version=\""));
  EXPECT_THAT(registry.FamilyNames(), Each(StartsWith("quantd_")));
  EXPECT_THAT(registry.FamilyNames(), Each(Not(StartsWith("quantd_worker_"))));
}

TEST(QuantdMetricsTest, ServerHelpersUpdateTheRightSeries) {
  Registry registry;
  auto metrics = ServerMetrics::Create(registry);
  ASSERT_TRUE(metrics.ok());
  ServerMetrics& m = **metrics;
  m.JobsFinished(JobOutcome::kSucceeded).Increment();
  m.JobsFinished(JobOutcome::kSucceeded).Increment();
  m.JobDuration(JobOutcome::kCancelled).Observe(3);
  m.ObserveGrpcRequest("GetJob", "NOT_FOUND", 0.0007);
  m.ObserveGrpcRequest("GetJob", "NOT_FOUND", 0.0007);
  m.ObserveStoreOperation("list_jobs", 0.02);
  std::string text = registry.Serialize();
  EXPECT_THAT(text, HasSubstr("quantd_jobs_finished_total{outcome=\"succeeded\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("quantd_job_duration_seconds_count{outcome=\"cancelled\"} 1\n"));
  EXPECT_THAT(text,
              HasSubstr("quantd_grpc_requests_total{method=\"GetJob\",code=\"NOT_FOUND\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("quantd_grpc_request_duration_seconds_bucket{method=\"GetJob\","
                              "le=\"0.001\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("quantd_store_operation_duration_seconds_sum{operation=\"list_jobs\"}"
                              " 0.02\n"));
}

TEST(QuantdMetricsTest, WorkerMetricsUseTheWorkerPrefix) {
  Registry registry;
  auto metrics = WorkerMetrics::Create(registry);
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_THAT(registry.FamilyNames(), Each(StartsWith("quantd_worker_")));
  Gauge* peak = *(*metrics)->gpu_memory_peak_bytes.Add({{"gpu", "0"}});
  peak->SetToMax(2e9);
  peak->SetToMax(1e9);
  EXPECT_THAT(registry.Serialize(),
              HasSubstr("quantd_worker_gpu_memory_peak_bytes{gpu=\"0\"} 2000000000\n"));
}

TEST(QuantdMetricsTest, ServerAndWorkerCanShareOneRegistryButNotTwice) {
  Registry registry;
  ASSERT_TRUE(ServerMetrics::Create(registry).ok());
  ASSERT_TRUE(WorkerMetrics::Create(registry).ok());  // a server with an in-process worker
  EXPECT_EQ(ServerMetrics::Create(registry).status().code(), absl::StatusCode::kAlreadyExists);
}

}  // namespace
}  // namespace quantd::metrics
