#include "scheduler.h"

#include <algorithm>

namespace quantd::server {

std::vector<Placement> Scheduler::Schedule(std::vector<QueuedJob> queue,
                                           std::vector<WorkerView> workers) const {
  std::stable_sort(queue.begin(), queue.end(), [](const QueuedJob& a, const QueuedJob& b) {
    if (a.priority != b.priority) return a.priority > b.priority;
    if (a.create_micros != b.create_micros) return a.create_micros < b.create_micros;
    return a.job_id < b.job_id;
  });
  std::vector<Placement> placements;
  for (const QueuedJob& job : queue) {
    WorkerView* best_worker = nullptr;
    GpuSlotView* best_gpu = nullptr;
    int32_t best_load = 0;
    for (WorkerView& worker : workers) {
      if (worker.gpus.empty()) {
        if (worker.cpu_running < worker.cpu_slots &&
            (best_worker == nullptr || worker.cpu_running < best_load)) {
          best_worker = &worker;
          best_gpu = nullptr;
          best_load = worker.cpu_running;
        }
        continue;
      }
      int32_t slots = worker.slots_per_gpu < 1 ? 1 : worker.slots_per_gpu;
      if (max_jobs_per_gpu_ > 0 && slots > max_jobs_per_gpu_) slots = max_jobs_per_gpu_;
      for (GpuSlotView& gpu : worker.gpus) {
        const bool free_slot = gpu.running_jobs < slots;
        const bool fits = gpu.memory_bytes - gpu.reserved_bytes >= job.estimated_bytes;
        if (free_slot && fits && (best_worker == nullptr || gpu.running_jobs < best_load)) {
          best_worker = &worker;
          best_gpu = &gpu;
          best_load = gpu.running_jobs;
        }
      }
    }
    if (best_worker == nullptr) continue;
    Placement placement{job.job_id, best_worker->worker_id, -1};
    if (best_gpu != nullptr) {
      placement.gpu_index = best_gpu->index;
      ++best_gpu->running_jobs;
      best_gpu->reserved_bytes += job.estimated_bytes;
    } else {
      ++best_worker->cpu_running;
    }
    placements.push_back(std::move(placement));
  }
  return placements;
}

}  // namespace quantd::server
