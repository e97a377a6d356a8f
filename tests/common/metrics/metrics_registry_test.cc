// Registration rules, label handling and thread safety of the metrics module.
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "metrics/registry.h"

namespace quantd::metrics {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

MATCHER_P2(IsErrorWith, code, text, "") {
  return arg.code() == code && std::string(arg.message()).find(text) != std::string::npos;
}

TEST(RegistryTest, RejectsInvalidMetricNames) {
  Registry registry;
  EXPECT_THAT(registry.AddGaugeFamily("9lives", "x").status(),
              IsErrorWith(absl::StatusCode::kInvalidArgument, "invalid metric name \"9lives\""));
  EXPECT_THAT(registry.AddGaugeFamily("has-dash", "x").status(),
              IsErrorWith(absl::StatusCode::kInvalidArgument, "[a-zA-Z_:][a-zA-Z0-9_:]*"));
  EXPECT_THAT(registry.AddGaugeFamily("", "x").status(),
              IsErrorWith(absl::StatusCode::kInvalidArgument, "invalid metric name"));
  EXPECT_TRUE(registry.AddGaugeFamily("ns:sub_name_1", "x").ok());
}

TEST(RegistryTest, EnforcesNamingConventionsAndHelp) {
  Registry registry;
  EXPECT_THAT(registry.AddCounterFamily("jobs", "x").status(),
              IsErrorWith(absl::StatusCode::kInvalidArgument, "counter names must end in _total"));
  EXPECT_THAT(registry.AddGaugeFamily("jobs_total", "x").status(),
              IsErrorWith(absl::StatusCode::kInvalidArgument, "only counter names"));
  EXPECT_THAT(
      registry.AddGaugeFamily("jobs", "").status(),
      IsErrorWith(absl::StatusCode::kInvalidArgument, "metric jobs: help text is required"));
}

TEST(RegistryTest, RejectsInvalidLabelNames) {
  Registry registry;
  EXPECT_THAT(registry.AddGaugeFamily("g", "x", {"__reserved"}).status(),
              IsErrorWith(absl::StatusCode::kInvalidArgument, "reserved"));
  EXPECT_THAT(registry.AddGaugeFamily("g", "x", {"a:b"}).status(),
              IsErrorWith(absl::StatusCode::kInvalidArgument, "invalid label name \"a:b\""));
  EXPECT_THAT(registry.AddGaugeFamily("g", "x", {"a", "a"}).status(),
              IsErrorWith(absl::StatusCode::kInvalidArgument, "label name \"a\" repeated"));
  EXPECT_THAT(registry.AddHistogramFamily("h", "x", {"le"}, {1}).status(),
              IsErrorWith(absl::StatusCode::kInvalidArgument, "reserved for histogram buckets"));
}

TEST(RegistryTest, RejectsBadBuckets) {
  Registry registry;
  EXPECT_THAT(registry.AddHistogramFamily("h", "x", {}, {}).status(),
              IsErrorWith(absl::StatusCode::kInvalidArgument, "at least one bucket"));
  EXPECT_THAT(registry.AddHistogramFamily("h", "x", {}, {1, 1}).status(),
              IsErrorWith(absl::StatusCode::kInvalidArgument, "increase strictly"));
  EXPECT_THAT(registry.AddHistogramFamily("h", "x", {}, {1, HUGE_VAL}).status(),
              IsErrorWith(absl::StatusCode::kInvalidArgument, "not finite"));
  EXPECT_THAT(*ExponentialBuckets(1, 2, 4), ElementsAre(1, 2, 4, 8));
  EXPECT_THAT(*LinearBuckets(0.5, 0.5, 3), ElementsAre(0.5, 1, 1.5));
  EXPECT_FALSE(ExponentialBuckets(0, 2, 4).ok());
  EXPECT_FALSE(LinearBuckets(0, 0, 4).ok());
}

TEST(RegistryTest, RejectsNamesThatCollide) {
  Registry registry;
  ASSERT_TRUE(registry.AddHistogramFamily("latency_seconds", "x", {}, {1}).ok());
  EXPECT_THAT(registry.AddGaugeFamily("latency_seconds", "x").status(),
              IsErrorWith(absl::StatusCode::kAlreadyExists, "already taken"));
  // A gauge named like the histogram's _count sample would corrupt the exposition.
  EXPECT_THAT(registry.AddGaugeFamily("latency_seconds_count", "x").status(),
              IsErrorWith(absl::StatusCode::kAlreadyExists, "latency_seconds_count"));
  ASSERT_TRUE(registry.AddGaugeFamily("size_bytes_sum", "x").ok());
  EXPECT_THAT(registry.AddHistogramFamily("size_bytes", "x", {}, {1}).status(),
              IsErrorWith(absl::StatusCode::kAlreadyExists, "size_bytes_sum"));
  EXPECT_THAT(registry.FamilyNames(), ElementsAre("latency_seconds", "size_bytes_sum"));
  EXPECT_THAT(registry.SeriesNames(), ElementsAre("latency_seconds_bucket", "latency_seconds_count",
                                                  "latency_seconds_sum", "size_bytes_sum"));
}

TEST(RegistryTest, ChildrenNeedExactlyTheDeclaredLabels) {
  Registry registry;
  auto family = registry.AddCounterFamily("calls_total", "x", {"method", "code"});
  ASSERT_TRUE(family.ok());
  EXPECT_THAT((*family)->Add({{"method", "Get"}}).status(),
              IsErrorWith(absl::StatusCode::kInvalidArgument,
                          "labels {method} do not match its declared label names {method, code}"));
  EXPECT_FALSE((*family)->Add({{"method", "Get"}, {"status", "OK"}}).ok());
  EXPECT_THAT((*family)->Add({{"method", "\xff"}, {"code", "OK"}}).status(),
              IsErrorWith(absl::StatusCode::kInvalidArgument, "\"method\" is not valid UTF-8"));
  EXPECT_FALSE((*family)->Add({{"method", "\xed\xa0\x80"}, {"code", "OK"}}).ok());  // surrogate
  EXPECT_TRUE((*family)->Add({{"method", "日本"}, {"code", ""}}).ok());
}

TEST(RegistryTest, SameLabelsGiveTheSameChild) {
  Registry registry;
  auto family = registry.AddGaugeFamily("temp", "x", {"gpu"});
  ASSERT_TRUE(family.ok());
  Gauge* a = *(*family)->Add({{"gpu", "0"}});
  Gauge* b = *(*family)->Add({{"gpu", "0"}});
  Gauge* c = *(*family)->Add({{"gpu", "1"}});
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST(RegistryTest, CollectCallbacksRefreshGaugesAtScrapeTime) {
  Registry registry;
  auto family = registry.AddGaugeFamily("queue_length", "x");
  ASSERT_TRUE(family.ok());
  Gauge* gauge = *(*family)->Add({});
  int queue_length = 3;  // state owned elsewhere
  int calls = 0;
  registry.AddCollectCallback([&] {
    ++calls;
    gauge->Set(queue_length);
  });
  EXPECT_THAT(registry.Serialize(), HasSubstr("queue_length 3\n"));
  queue_length = 5;
  EXPECT_THAT(registry.Serialize(), HasSubstr("queue_length 5\n"));
  EXPECT_EQ(calls, 2);
}

TEST(MetricTest, CounterNeverDecreases) {
  Counter counter;
  counter.Increment();
  counter.Increment(2.5);
  counter.Increment(-10);
  counter.Increment(std::nan(""));
  EXPECT_EQ(counter.Value(), 3.5);
}

TEST(MetricTest, GaugeMovesBothWaysAndKeepsAMaximum) {
  Gauge gauge;
  gauge.Set(10);
  gauge.Decrement(3);
  gauge.Increment();
  EXPECT_EQ(gauge.Value(), 8);
  gauge.SetToMax(5);
  EXPECT_EQ(gauge.Value(), 8);
  gauge.SetToMax(12);
  EXPECT_EQ(gauge.Value(), 12);
}

TEST(MetricTest, HistogramBucketsAreCumulativeWithInclusiveBounds) {
  Histogram histogram(std::make_shared<const BucketBounds>(BucketBounds{1, 2, 4}));
  for (double v : {0.0, 1.0, 1.5, 2.0, 3.0, 100.0}) histogram.Observe(v);
  histogram.Observe(std::nan(""));  // counted in +Inf only
  Histogram::Snapshot s = histogram.Collect();
  EXPECT_THAT(s.cumulative_counts, ElementsAre(2, 4, 5, 7));
  EXPECT_EQ(s.count, 7u);
}

TEST(ConcurrencyTest, UpdatesFromManyThreadsAreAllCounted) {
  Registry registry;
  auto counters = registry.AddCounterFamily("ops_total", "x", {"thread"});
  auto histograms = registry.AddHistogramFamily("op_seconds", "x", {}, {0.5});
  ASSERT_TRUE(counters.ok() && histograms.ok());
  Histogram* shared_histogram = *(*histograms)->Add({});
  constexpr int kThreads = 8;
  constexpr int kIterations = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Counter* mine = *(*counters)->Add({{"thread", std::to_string(t % 2)}});
      for (int i = 0; i < kIterations; ++i) {
        mine->Increment();
        shared_histogram->Observe(i % 2 == 0 ? 0.25 : 1.0);
        if (i % 1000 == 0) registry.Serialize();  // scrapes race with updates
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  double total = (*(*counters)->Add({{"thread", "0"}}))->Value() +
                 (*(*counters)->Add({{"thread", "1"}}))->Value();
  EXPECT_EQ(total, kThreads * kIterations);
  Histogram::Snapshot s = shared_histogram->Collect();
  EXPECT_EQ(s.count, static_cast<uint64_t>(kThreads * kIterations));
  EXPECT_EQ(s.cumulative_counts[0], static_cast<uint64_t>(kThreads * kIterations / 2));
  EXPECT_EQ(s.sum, kThreads * kIterations / 2 * 1.25);
  EXPECT_THAT(registry.Serialize(), HasSubstr("op_seconds_count 160000\n"));
}

}  // namespace
}  // namespace quantd::metrics
