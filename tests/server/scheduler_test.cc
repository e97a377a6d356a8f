// Placement policy: priority then age; a free slot and a fit by the engine's memory plan (token
// chunks included); one job per GPU by default; GPU memory in use by heartbeat; why jobs wait.
#include "scheduler.h"

#include <gtest/gtest.h>

#include <algorithm>

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

// ---- Jobs on several GPUs (JobSpec.gpus, data-parallel calibration) ----

QueuedJob GpusJob(std::string id, int64_t age, int32_t gpus) {
  QueuedJob job = Job(std::move(id), 0, age, kQwen05b);
  job.gpus = gpus;
  return job;
}

WorkerView MultiGpuWorker(const std::string& id, int gpus) {
  WorkerView w = GpuWorker(id, std::vector<int64_t>(static_cast<size_t>(gpus), 80 * kGiB));
  w.max_job_gpus = gpus;  // as quantd-worker advertises: every GPU for one job
  return w;
}

TEST(SchedulerTest, ATwoGpuJobWaitsForAWorkerWithTwoFreeGpus) {
  WorkerView w = MultiGpuWorker("w", 2);
  w.gpus[1].running_jobs = 1;  // one GPU busy: not enough for the job
  w.gpus[1].reserved_bytes = 10 * kGiB;
  ScheduleResult r = Scheduler(0).Schedule({GpusJob("two", 1, 2)}, {w});
  EXPECT_TRUE(r.placements.empty());
  ASSERT_EQ(r.waiting.size(), 1u);
  EXPECT_EQ(r.waiting[0].reason, WaitReason::kWaitingForCapacity);

  w.gpus[1].running_jobs = 0;  // the other job ended
  w.gpus[1].reserved_bytes = 0;
  r = Scheduler(0).Schedule({GpusJob("two", 1, 2), GpusJob("one", 2, 1)}, {w});
  ASSERT_EQ(r.placements.size(), 1u);
  EXPECT_EQ(r.placements[0].job_id, "two");
  EXPECT_EQ(r.placements[0].gpu_indices, (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(r.placements[0].gpu_index, 0);
  // Reserved on each GPU: the plan of the share of blocks one GPU holds (QueuedJob.blocks).
  EXPECT_EQ(r.placements[0].reserved_bytes,
            static_cast<int64_t>(memory_plan::PlanRun(kQwen05b, 128, 512,
                                                      memory_plan::AvailableOnGpu(80.0 * kGiB, 0))
                                     .planned_bytes));
  ASSERT_EQ(r.waiting.size(), 1u);  // the one-GPU job behind it finds both GPUs taken
  EXPECT_EQ(r.waiting[0].job_id, "one");
  EXPECT_EQ(r.waiting[0].reason, WaitReason::kWaitingForCapacity);
}

TEST(SchedulerTest, AFourGpuWorkerRunsFourOneGpuJobsAtOnce) {
  ScheduleResult r =
      Scheduler(0).Schedule({GpusJob("a", 1, 1), GpusJob("b", 2, 1), GpusJob("c", 3, 1),
                             GpusJob("d", 4, 1), GpusJob("e", 5, 1)},
                            {MultiGpuWorker("w", 4)});
  ASSERT_EQ(r.placements.size(), 4u);
  std::vector<int32_t> gpus;
  for (const Placement& p : r.placements) {
    ASSERT_EQ(p.gpu_indices.size(), 1u);
    EXPECT_EQ(p.gpu_indices[0], p.gpu_index);
    gpus.push_back(p.gpu_index);
  }
  std::sort(gpus.begin(), gpus.end());
  EXPECT_EQ(gpus, (std::vector<int32_t>{0, 1, 2, 3}));  // one each
  ASSERT_EQ(r.waiting.size(), 1u);
  EXPECT_EQ(r.waiting[0].job_id, "e");
  EXPECT_EQ(r.waiting[0].reason, WaitReason::kWaitingForCapacity);
}

TEST(SchedulerTest, AFourGpuWorkerRunsAMixOrOneFourGpuJob) {
  // A 2-GPU job and two 1-GPU jobs share the worker; the 4-GPU job behind them waits for all.
  ScheduleResult r = Scheduler(0).Schedule(
      {GpusJob("two", 1, 2), GpusJob("one-a", 2, 1), GpusJob("four", 3, 4), GpusJob("one-b", 4, 1)},
      {MultiGpuWorker("w", 4)});
  ASSERT_EQ(r.placements.size(), 3u);
  EXPECT_EQ(r.placements[0].gpu_indices, (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(r.placements[1].gpu_indices, (std::vector<int32_t>{2}));
  EXPECT_EQ(r.placements[2].job_id, "one-b");
  EXPECT_EQ(r.placements[2].gpu_indices, (std::vector<int32_t>{3}));
  ASSERT_EQ(r.waiting.size(), 1u);
  EXPECT_EQ(r.waiting[0].job_id, "four");
  EXPECT_EQ(r.waiting[0].reason, WaitReason::kWaitingForCapacity);
  // Alone, it takes every GPU.
  r = Scheduler(0).Schedule({GpusJob("four", 3, 4)}, {MultiGpuWorker("w", 4)});
  ASSERT_EQ(r.placements.size(), 1u);
  EXPECT_EQ(r.placements[0].gpu_indices, (std::vector<int32_t>{0, 1, 2, 3}));
}

TEST(SchedulerTest, GpusAreNeverTakenFromTwoWorkers) {
  // Two one-GPU workers do not make a two-GPU worker; nor does one that runs jobs on one GPU only
  // (a worker from before multi-GPU jobs).
  WorkerView old = GpuWorker("old", {80 * kGiB, 80 * kGiB});
  ScheduleResult r = Scheduler(0).Schedule({GpusJob("two", 1, 2)},
                                           {MultiGpuWorker("a", 1), MultiGpuWorker("b", 1), old});
  EXPECT_TRUE(r.placements.empty());
  ASSERT_EQ(r.waiting.size(), 1u);
  EXPECT_EQ(r.waiting[0].reason, WaitReason::kTooFewGpus);
  EXPECT_EQ(r.waiting[0].most_job_gpus, 1);
  EXPECT_EQ(WaitReasonName(WaitReason::kTooFewGpus), "too_few_gpus");
}

TEST(SchedulerTest, EachOfAJobsGpusMustHoldItsShare) {
  // A 2-GPU job whose share fits 80 GiB GPUs: not placed on a worker where one GPU is 8 GiB.
  WorkerView mixed = GpuWorker("mixed", {80 * kGiB, 8 * kGiB});
  mixed.max_job_gpus = 2;
  QueuedJob job = GpusJob("two", 1, 2);
  job.geometry = kQwen7b;
  job.blocks = 128;
  job.len = 2048;
  ScheduleResult r = Scheduler(0).Schedule({job}, {mixed});
  EXPECT_TRUE(r.placements.empty());
  ASSERT_EQ(r.waiting.size(), 1u);
  EXPECT_EQ(r.waiting[0].reason, WaitReason::kGpuTooSmall);
  r = Scheduler(0).Schedule({job}, {MultiGpuWorker("big", 2)});
  ASSERT_EQ(r.placements.size(), 1u);
}

TEST(SchedulerTest, AMultiGpuJobTakesAsManyCpuSlots) {
  WorkerView cpu;
  cpu.worker_id = "cpu";
  cpu.cpu_slots = 3;
  cpu.max_job_gpus = 3;
  ScheduleResult r = Scheduler(0).Schedule(
      {GpusJob("two", 1, 2), GpusJob("two-more", 2, 2), GpusJob("one", 3, 1)}, {cpu});
  ASSERT_EQ(r.placements.size(), 2u);
  EXPECT_EQ(r.placements[0].job_id, "two");
  EXPECT_TRUE(r.placements[0].gpu_indices.empty());
  EXPECT_EQ(r.placements[1].job_id, "one");
  ASSERT_EQ(r.waiting.size(), 1u);
  EXPECT_EQ(r.waiting[0].reason, WaitReason::kWaitingForCapacity);
}

}  // namespace
}  // namespace quantd::server
