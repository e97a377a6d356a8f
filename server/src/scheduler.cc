#include "scheduler.h"

#include <algorithm>

namespace quantd::server {

std::string_view WaitReasonName(WaitReason reason) {
  switch (reason) {
    case WaitReason::kNoWorker:
      return "no_worker";
    case WaitReason::kWaitingForCapacity:
      return "waiting_for_capacity";
    case WaitReason::kGpuTooSmall:
      return "gpu_too_small";
    case WaitReason::kTooFewGpus:
      return "too_few_gpus";
  }
  return "no_worker";
}

namespace {

// What one worker offers a job.
struct Offer {
  bool holds = false;              // it runs a job on as many GPUs (CPU slots) as this one asks for
  bool ever = false;               // ... and has GPUs large enough: it can run it once it has room
  bool now = false;                // ... and has room now
  int32_t load = 0;                // jobs already on the GPUs it would get (CPU slots taken)
  std::vector<GpuSlotView*> gpus;  // the GPUs it would get, in rank order
  int64_t reserve = 0;             // the plan's bytes on each of them (the largest of their plans)
};

// The most GPUs (CPU slots) `worker` gives one job.
int32_t JobGpusOf(const WorkerView& worker) {
  const int32_t devices =
      worker.gpus.empty() ? worker.cpu_slots : static_cast<int32_t>(worker.gpus.size());
  return std::max(1, std::min(std::max(1, worker.max_job_gpus), devices));
}

Offer OfferOf(const QueuedJob& job, WorkerView& worker, int32_t slots_per_gpu) {
  Offer offer;
  const int32_t n = std::max(1, job.gpus);
  offer.holds = n <= JobGpusOf(worker);
  if (!offer.holds) return offer;
  if (worker.gpus.empty()) {
    offer.ever = true;
    offer.now = worker.cpu_running + n <= worker.cpu_slots;
    offer.load = worker.cpu_running;
    return offer;
  }
  std::vector<std::pair<GpuSlotView*, int64_t>> room;  // GPUs with a free slot the job fits
  int32_t large_enough = 0;
  for (GpuSlotView& gpu : worker.gpus) {
    const double total = static_cast<double>(gpu.memory_bytes);
    if (memory_plan::PlanRun(job.geometry, job.blocks, job.len,
                             memory_plan::AvailableOnGpu(total, 0))
            .fits()) {
      ++large_enough;
    }
    if (gpu.running_jobs >= slots_per_gpu) continue;
    const double taken = static_cast<double>(std::max(gpu.reserved_bytes, gpu.used_bytes));
    const memory_plan::RunPlan plan = memory_plan::PlanRun(
        job.geometry, job.blocks, job.len, memory_plan::AvailableOnGpu(total, taken));
    if (plan.fits()) room.emplace_back(&gpu, static_cast<int64_t>(plan.planned_bytes));
  }
  offer.ever = large_enough >= n;
  if (static_cast<int32_t>(room.size()) < n) return offer;
  std::stable_sort(room.begin(), room.end(), [](const auto& a, const auto& b) {
    return a.first->running_jobs < b.first->running_jobs;
  });
  offer.now = true;
  for (int32_t i = 0; i < n; ++i) {
    offer.gpus.push_back(room[static_cast<size_t>(i)].first);
    offer.load += room[static_cast<size_t>(i)].first->running_jobs;
    offer.reserve = std::max(offer.reserve, room[static_cast<size_t>(i)].second);
  }
  return offer;
}

}  // namespace

ScheduleResult Scheduler::Schedule(std::vector<QueuedJob> queue,
                                   std::vector<WorkerView> workers) const {
  std::stable_sort(queue.begin(), queue.end(), [](const QueuedJob& a, const QueuedJob& b) {
    if (a.priority != b.priority) return a.priority > b.priority;
    if (a.create_micros != b.create_micros) return a.create_micros < b.create_micros;
    return a.job_id < b.job_id;
  });
  ScheduleResult result;
  for (const QueuedJob& job : queue) {
    WorkerView* best_worker = nullptr;
    Offer best;
    bool held = false, could_ever_run = false;
    int64_t largest_gpu = 0;
    int32_t most_job_gpus = 0;
    for (WorkerView& worker : workers) {
      int32_t slots = worker.slots_per_gpu < 1 ? 1 : worker.slots_per_gpu;
      if (max_jobs_per_gpu_ > 0 && slots > max_jobs_per_gpu_) slots = max_jobs_per_gpu_;
      for (const GpuSlotView& gpu : worker.gpus) {
        largest_gpu = std::max(largest_gpu, gpu.memory_bytes);
      }
      most_job_gpus = std::max(most_job_gpus, JobGpusOf(worker));
      Offer offer = OfferOf(job, worker, slots);
      held = held || offer.holds;
      could_ever_run = could_ever_run || offer.ever;
      if (offer.now && (best_worker == nullptr || offer.load < best.load)) {
        best_worker = &worker;
        best = std::move(offer);
      }
    }
    if (best_worker == nullptr) {
      Waiting waiting{job.job_id, WaitReason::kNoWorker, largest_gpu, most_job_gpus};
      if (could_ever_run) {
        waiting.reason = WaitReason::kWaitingForCapacity;
      } else if (!workers.empty()) {
        waiting.reason = held ? WaitReason::kGpuTooSmall : WaitReason::kTooFewGpus;
      }
      result.waiting.push_back(std::move(waiting));
      continue;
    }
    Placement placement{job.job_id, best_worker->worker_id, -1, 0, {}};
    if (best.gpus.empty()) {
      best_worker->cpu_running += std::max(1, job.gpus);
    } else {
      placement.gpu_index = best.gpus.front()->index;
      placement.reserved_bytes = best.reserve;
      for (GpuSlotView* gpu : best.gpus) {
        placement.gpu_indices.push_back(gpu->index);
        ++gpu->running_jobs;
        gpu->reserved_bytes += best.reserve;
      }
    }
    result.placements.push_back(std::move(placement));
  }
  return result;
}

}  // namespace quantd::server
