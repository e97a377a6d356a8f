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
  }
  return "no_worker";
}

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
    GpuSlotView* best_gpu = nullptr;
    int32_t best_load = 0;
    int64_t best_reserve = 0;
    bool could_ever_run = false;  // on some connected worker, once it has room
    int64_t largest_gpu = 0;
    for (WorkerView& worker : workers) {
      if (worker.gpus.empty()) {
        could_ever_run = true;
        if (worker.cpu_running < worker.cpu_slots &&
            (best_worker == nullptr || worker.cpu_running < best_load)) {
          best_worker = &worker;
          best_gpu = nullptr;
          best_load = worker.cpu_running;
          best_reserve = 0;
        }
        continue;
      }
      int32_t slots = worker.slots_per_gpu < 1 ? 1 : worker.slots_per_gpu;
      if (max_jobs_per_gpu_ > 0 && slots > max_jobs_per_gpu_) slots = max_jobs_per_gpu_;
      for (GpuSlotView& gpu : worker.gpus) {
        largest_gpu = std::max(largest_gpu, gpu.memory_bytes);
        const double total = static_cast<double>(gpu.memory_bytes);
        if (memory_plan::PlanRun(job.geometry, job.blocks, job.len,
                                 memory_plan::AvailableOnGpu(total, 0))
                .fits()) {
          could_ever_run = true;
        }
        if (gpu.running_jobs >= slots) continue;
        const double taken = static_cast<double>(std::max(gpu.reserved_bytes, gpu.used_bytes));
        const memory_plan::RunPlan plan = memory_plan::PlanRun(
            job.geometry, job.blocks, job.len, memory_plan::AvailableOnGpu(total, taken));
        if (plan.fits() && (best_worker == nullptr || gpu.running_jobs < best_load)) {
          best_worker = &worker;
          best_gpu = &gpu;
          best_load = gpu.running_jobs;
          best_reserve = static_cast<int64_t>(plan.planned_bytes);
        }
      }
    }
    if (best_worker == nullptr) {
      Waiting waiting{job.job_id, WaitReason::kNoWorker, largest_gpu};
      if (!workers.empty()) {
        waiting.reason =
            could_ever_run ? WaitReason::kWaitingForCapacity : WaitReason::kGpuTooSmall;
      }
      result.waiting.push_back(std::move(waiting));
      continue;
    }
    Placement placement{job.job_id, best_worker->worker_id, -1, 0};
    if (best_gpu != nullptr) {
      placement.gpu_index = best_gpu->index;
      placement.reserved_bytes = best_reserve;
      ++best_gpu->running_jobs;
      best_gpu->reserved_bytes += best_reserve;
    } else {
      ++best_worker->cpu_running;
    }
    result.placements.push_back(std::move(placement));
  }
  return result;
}

}  // namespace quantd::server
