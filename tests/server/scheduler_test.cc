// Placement policy: priority then age; free slot and memory fit; one job per GPU by default.
#include "scheduler.h"

#include <gtest/gtest.h>

namespace quantd::server {
namespace {

constexpr int64_t kGiB = int64_t{1} << 30;

WorkerView GpuWorker(const std::string& id, std::vector<int64_t> memories) {
  WorkerView w;
  w.worker_id = id;
  for (size_t i = 0; i < memories.size(); ++i) {
    w.gpus.push_back({static_cast<int32_t>(i), memories[i], 0, 0});
  }
  return w;
}

TEST(SchedulerTest, HigherPriorityThenOlderFirst) {
  Scheduler scheduler(0);
  auto placements = scheduler.Schedule(
      {{"old-low", 0, 1, kGiB}, {"new-high", 5, 3, kGiB}, {"mid-low", 0, 2, kGiB}},
      {GpuWorker("w", {80 * kGiB, 80 * kGiB})});
  ASSERT_EQ(placements.size(), 2u);
  EXPECT_EQ(placements[0].job_id, "new-high");
  EXPECT_EQ(placements[1].job_id, "old-low");
  EXPECT_NE(placements[0].gpu_index, placements[1].gpu_index);
}

TEST(SchedulerTest, OnlyWhereTheEstimateFits) {
  Scheduler scheduler(0);
  auto placements =
      scheduler.Schedule({{"big", 0, 1, 60 * kGiB}, {"small", 0, 2, 10 * kGiB}},
                         {GpuWorker("small-gpu", {24 * kGiB}), GpuWorker("big-gpu", {80 * kGiB})});
  ASSERT_EQ(placements.size(), 2u);
  EXPECT_EQ(placements[0].job_id, "big");
  EXPECT_EQ(placements[0].worker_id, "big-gpu");
  EXPECT_EQ(placements[1].job_id, "small");
  EXPECT_EQ(placements[1].worker_id, "small-gpu");
}

TEST(SchedulerTest, AJobThatFitsNowhereDoesNotBlockSmallerOnes) {
  Scheduler scheduler(0);
  auto placements = scheduler.Schedule({{"huge", 9, 1, 500 * kGiB}, {"small", 0, 2, kGiB}},
                                       {GpuWorker("w", {80 * kGiB})});
  ASSERT_EQ(placements.size(), 1u);
  EXPECT_EQ(placements[0].job_id, "small");
}

TEST(SchedulerTest, OneJobPerGpuUnlessConfigured) {
  WorkerView busy = GpuWorker("w", {80 * kGiB});
  busy.gpus[0].running_jobs = 1;
  busy.gpus[0].reserved_bytes = 10 * kGiB;
  EXPECT_TRUE(Scheduler(0).Schedule({{"j", 0, 1, kGiB}}, {busy}).empty());  // Default: 1.
  busy.slots_per_gpu = 2;  // The worker offers two jobs per GPU.
  auto shared = Scheduler(0).Schedule({{"j", 0, 1, kGiB}, {"k", 0, 2, kGiB}}, {busy});
  ASSERT_EQ(shared.size(), 1u);  // One more fits, not two.
  EXPECT_TRUE(Scheduler(1).Schedule({{"j", 0, 1, kGiB}}, {busy}).empty());  // Server cap.
  // Memory already reserved counts against the fit.
  EXPECT_TRUE(Scheduler(0).Schedule({{"j", 0, 1, 75 * kGiB}}, {busy}).empty());
}

TEST(SchedulerTest, CpuWorkersOfferSlots) {
  WorkerView cpu;
  cpu.worker_id = "cpu";
  cpu.cpu_slots = 2;
  auto placements =
      Scheduler(1).Schedule({{"a", 0, 1, 100 * kGiB}, {"b", 0, 2, kGiB}, {"c", 0, 3, kGiB}}, {cpu});
  ASSERT_EQ(placements.size(), 2u);
  EXPECT_EQ(placements[0].gpu_index, -1);
  EXPECT_EQ(placements[1].job_id, "b");
}

TEST(SchedulerTest, SpreadsOverWorkers) {
  WorkerView a, b;
  a.worker_id = "a";
  b.worker_id = "b";
  auto placements = Scheduler(1).Schedule({{"1", 0, 1, 0}, {"2", 0, 2, 0}}, {a, b});
  ASSERT_EQ(placements.size(), 2u);
  EXPECT_NE(placements[0].worker_id, placements[1].worker_id);
}

}  // namespace
}  // namespace quantd::server
