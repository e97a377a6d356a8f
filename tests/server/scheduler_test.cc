// Placement policy: priority then age; a free slot and a fit by the engine's memory plan (token
// chunks included); one job per GPU by default; GPU memory in use by heartbeat; why jobs wait.
#include "scheduler.h"

#include <gtest/gtest.h>

namespace quantd::server {
namespace {

constexpr int64_t kGiB = int64_t{1} << 30;

// Layer geometries of real models (config.json): Qwen2.5-0.5B and Qwen2.5-7B, bfloat16.
constexpr memory_plan::LayerGeometry kQwen05b{896, 4864, 14, 2, 64, 2};
constexpr memory_plan::LayerGeometry kQwen7b{3584, 18944, 28, 4, 128, 2};

QueuedJob Job(std::string id, int32_t priority, int64_t age, memory_plan::LayerGeometry g,
              int64_t blocks = 128, int64_t len = 512) {
  return {std::move(id), priority, age, g, blocks, len};
}

WorkerView GpuWorker(const std::string& id, std::vector<int64_t> memories) {
  WorkerView w;
  w.worker_id = id;
  for (size_t i = 0; i < memories.size(); ++i) {
    w.gpus.push_back({static_cast<int32_t>(i), memories[i], 0, 0, 0});
  }
  return w;
}

TEST(SchedulerTest, HigherPriorityThenOlderFirst) {
  Scheduler scheduler(0);
  ScheduleResult r =
      scheduler.Schedule({Job("old-low", 0, 1, kQwen05b), Job("new-high", 5, 3, kQwen05b),
                          Job("mid-low", 0, 2, kQwen05b)},
                         {GpuWorker("w", {80 * kGiB, 80 * kGiB})});
  ASSERT_EQ(r.placements.size(), 2u);
  EXPECT_EQ(r.placements[0].job_id, "new-high");
  EXPECT_EQ(r.placements[1].job_id, "old-low");
  EXPECT_NE(r.placements[0].gpu_index, r.placements[1].gpu_index);
  ASSERT_EQ(r.waiting.size(), 1u);
  EXPECT_EQ(r.waiting[0].job_id, "mid-low");
  EXPECT_EQ(r.waiting[0].reason, WaitReason::kWaitingForCapacity);
}

TEST(SchedulerTest, PlacesByTheEnginesMemoryPlanWithTokenChunksWhereNeeded) {
  // 7B at the seed's 256 x 2048: its activations (~150 GiB resident) fit no GPU, but the plan
  // works on them in token chunks, which a 24 GiB GPU holds; an 8 GiB one holds not even a block.
  const memory_plan::RunPlan on24 =
      memory_plan::PlanRun(kQwen7b, 256, 2048, memory_plan::AvailableOnGpu(24.0 * kGiB, 0));
  ASSERT_TRUE(on24.fits());
  EXPECT_GT(on24.chunks, 1);
  ScheduleResult r =
      Scheduler(0).Schedule({Job("7b", 0, 1, kQwen7b, 256, 2048)},
                            {GpuWorker("small", {8 * kGiB}), GpuWorker("mid", {24 * kGiB})});
  ASSERT_EQ(r.placements.size(), 1u);
  EXPECT_EQ(r.placements[0].worker_id, "mid");
  EXPECT_EQ(r.placements[0].reserved_bytes, static_cast<int64_t>(on24.planned_bytes));
  EXPECT_LE(r.placements[0].reserved_bytes, 24 * kGiB);
  EXPECT_TRUE(r.waiting.empty());
}

TEST(SchedulerTest, TheSeedsFullCalibrationOfASmallModelIsPlaced) {
  // Qwen2.5-0.5B with an 8 MB calibration file: about 2000 blocks of 2048 tokens. The estimate of
  // every token's activations at once (≈ 240 GB) fit no GPU; the engine's plan keeps the hidden
  // states where they fit and works in chunks.
  ScheduleResult r = Scheduler(0).Schedule({Job("seed-scale", 0, 1, kQwen05b, 2048, 2048)},
                                           {GpuWorker("h100", {80 * kGiB})});
  ASSERT_EQ(r.placements.size(), 1u);
  EXPECT_EQ(r.placements[0].gpu_index, 0);
}

TEST(SchedulerTest, AJobThatFitsNowhereDoesNotBlockSmallerOnesAndSaysWhy) {
  ScheduleResult r = Scheduler(0).Schedule(
      {Job("huge", 9, 1, kQwen7b, 256, 2048), Job("small", 0, 2, kQwen05b, 8, 512)},
      {GpuWorker("w", {6 * kGiB})});
  ASSERT_EQ(r.placements.size(), 1u);
  EXPECT_EQ(r.placements[0].job_id, "small");
  ASSERT_EQ(r.waiting.size(), 1u);
  EXPECT_EQ(r.waiting[0].job_id, "huge");
  EXPECT_EQ(r.waiting[0].reason, WaitReason::kGpuTooSmall);
  EXPECT_EQ(r.waiting[0].largest_gpu_bytes, 6 * kGiB);
  EXPECT_GT(memory_plan::SmallestGpuBytes(kQwen7b, 256, 2048), 6 * kGiB);
}

TEST(SchedulerTest, OneJobPerGpuUnlessConfigured) {
  WorkerView busy = GpuWorker("w", {80 * kGiB});
  busy.gpus[0].running_jobs = 1;
  busy.gpus[0].reserved_bytes = 10 * kGiB;
  EXPECT_TRUE(Scheduler(0).Schedule({Job("j", 0, 1, kQwen05b)}, {busy}).placements.empty());
  busy.slots_per_gpu = 2;  // The worker offers two jobs per GPU.
  ScheduleResult shared =
      Scheduler(0).Schedule({Job("j", 0, 1, kQwen05b), Job("k", 0, 2, kQwen05b)}, {busy});
  ASSERT_EQ(shared.placements.size(), 1u);  // One more fits, not two.
  EXPECT_TRUE(Scheduler(1).Schedule({Job("j", 0, 1, kQwen05b)}, {busy}).placements.empty());
  // Memory already reserved counts against the fit.
  busy.gpus[0].reserved_bytes = 79 * kGiB;
  EXPECT_TRUE(Scheduler(0).Schedule({Job("j", 0, 1, kQwen05b)}, {busy}).placements.empty());
}

TEST(SchedulerTest, GpuMemoryInUseByHeartbeatCounts) {
  WorkerView w = GpuWorker("w", {80 * kGiB});
  w.gpus[0].used_bytes = 79 * kGiB;  // another process holds the GPU
  ScheduleResult r = Scheduler(0).Schedule({Job("j", 0, 1, kQwen05b)}, {w});
  EXPECT_TRUE(r.placements.empty());
  ASSERT_EQ(r.waiting.size(), 1u);
  EXPECT_EQ(r.waiting[0].reason, WaitReason::kWaitingForCapacity);  // it fits once freed
  w.gpus[0].used_bytes = 2 * kGiB;
  EXPECT_EQ(Scheduler(0).Schedule({Job("j", 0, 1, kQwen05b)}, {w}).placements.size(), 1u);
}

TEST(SchedulerTest, NoWorkerIsAReasonToo) {
  ScheduleResult r = Scheduler(0).Schedule({Job("j", 0, 1, kQwen05b)}, {});
  ASSERT_EQ(r.waiting.size(), 1u);
  EXPECT_EQ(r.waiting[0].reason, WaitReason::kNoWorker);
  EXPECT_EQ(WaitReasonName(WaitReason::kGpuTooSmall), "gpu_too_small");
}

TEST(SchedulerTest, CpuWorkersOfferSlots) {
  WorkerView cpu;
  cpu.worker_id = "cpu";
  cpu.cpu_slots = 2;
  ScheduleResult r = Scheduler(1).Schedule(
      {Job("a", 0, 1, kQwen7b, 256, 2048), Job("b", 0, 2, kQwen05b), Job("c", 0, 3, kQwen05b)},
      {cpu});
  ASSERT_EQ(r.placements.size(), 2u);
  EXPECT_EQ(r.placements[0].gpu_index, -1);
  EXPECT_EQ(r.placements[1].job_id, "b");
  ASSERT_EQ(r.waiting.size(), 1u);
  EXPECT_EQ(r.waiting[0].reason, WaitReason::kWaitingForCapacity);
}

TEST(SchedulerTest, SpreadsOverWorkers) {
  WorkerView a, b;
  a.worker_id = "a";
  b.worker_id = "b";
  ScheduleResult r =
      Scheduler(1).Schedule({Job("1", 0, 1, kQwen05b), Job("2", 0, 2, kQwen05b)}, {a, b});
  ASSERT_EQ(r.placements.size(), 2u);
  EXPECT_NE(r.placements[0].worker_id, r.placements[1].worker_id);
}

}  // namespace
}  // namespace quantd::server
