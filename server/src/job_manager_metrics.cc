// JobManager, the metrics side: job transitions into counters and histograms as they happen, and
// jobs, workers and GPUs by state into gauges at scrape time (docs/metrics.md).
#include <algorithm>

#include "job_manager.h"

namespace quantd::server {
namespace {

std::optional<metrics::JobOutcome> OutcomeOf(v1::JobState state) {
  switch (state) {
    case v1::JOB_STATE_SUCCEEDED:
      return metrics::JobOutcome::kSucceeded;
    case v1::JOB_STATE_FAILED:
      return metrics::JobOutcome::kFailed;
    case v1::JOB_STATE_CANCELLED:
      return metrics::JobOutcome::kCancelled;
    default:
      return std::nullopt;
  }
}

}  // namespace

void JobManager::ObserveTransitionLocked(const std::string& job_id, v1::JobState state,
                                         const std::optional<JobClock>& clock) {
  const absl::Time now = absl::Now();
  if (std::optional<metrics::JobOutcome> outcome = OutcomeOf(state)) {
    metrics_.JobsFinished(*outcome).Increment();
    // Jobs that never reached a worker (cancelled while queued) have no duration.
    if (clock.has_value() && clock->first_placed.has_value()) {
      metrics_.JobDuration(*outcome).Observe(absl::ToDoubleSeconds(now - *clock->first_placed));
    }
    return;
  }
  auto it = clocks_.find(job_id);
  if (it == clocks_.end()) return;
  if (state == v1::JOB_STATE_ASSIGNED) {  // (2): an attempt starts.
    metrics_.job_attempts.Increment();
    metrics_.job_queue_wait_seconds.Observe(absl::ToDoubleSeconds(now - it->second.queued_since));
    if (!it->second.first_placed.has_value()) it->second.first_placed = now;
  } else if (state == v1::JOB_STATE_QUEUED) {  // (6): back in the queue.
    metrics_.job_requeues.Increment();
    it->second.queued_since = now;
  }
}

void JobManager::CollectMetrics() {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t queued = 0, running = 0;
  std::map<std::string, int64_t> by_reason;
  for (std::string_view reason : metrics::kQueueReasonLabels) by_reason[std::string(reason)] = 0;
  for (const auto& [id, record] : active_) {
    (record.job.state() == v1::JOB_STATE_QUEUED ? queued : running) += 1;
    switch (record.job.queue_reason()) {
      case v1::QUEUE_REASON_NO_WORKER:
        ++by_reason[std::string(WaitReasonName(WaitReason::kNoWorker))];
        break;
      case v1::QUEUE_REASON_WAITING_FOR_CAPACITY:
        ++by_reason[std::string(WaitReasonName(WaitReason::kWaitingForCapacity))];
        break;
      case v1::QUEUE_REASON_GPU_TOO_SMALL:
        ++by_reason[std::string(WaitReasonName(WaitReason::kGpuTooSmall))];
        break;
      case v1::QUEUE_REASON_TOO_FEW_GPUS:
        ++by_reason[std::string(WaitReasonName(WaitReason::kTooFewGpus))];
        break;
      default:
        break;
    }
  }
  for (const auto& [reason, n] : by_reason) {
    if (auto gauge = metrics_.queued_jobs.Add({{"reason", reason}}); gauge.ok()) {
      (*gauge)->Set(static_cast<double>(n));
    }
  }
  int64_t idle = 0, busy = 0, free_slots = 0, busy_slots = 0;
  int64_t memory_used = 0, memory_free = 0;  // GPUs whose worker reports their use
  for (const auto& [id, entry] : workers_) {
    if (!entry.outbox) {  // Disconnected or lost: its GPUs hold nothing of ours any more.
      for (const v1::Gpu& gpu : entry.info.gpus()) {
        const metrics::Labels labels = {{"worker", id}, {"gpu", std::to_string(gpu.index())}};
        if (auto g = metrics_.gpu_memory_reserved_bytes.Add(labels); g.ok()) (*g)->Set(0);
      }
      continue;
    }
    (entry.jobs.empty() ? idle : busy) += 1;
    for (const v1::Gpu& gpu : entry.info.gpus()) {
      auto used = entry.gpu_memory_used_bytes.find(gpu.index());
      if (used == entry.gpu_memory_used_bytes.end()) continue;
      memory_used += used->second;
      memory_free += std::max<int64_t>(0, gpu.memory_bytes() - used->second);
    }
    if (entry.info.gpus().empty()) {  // A CPU-only worker: its slots stand in for GPUs.
      int64_t used = 0;
      for (const auto& [job_id, gpu_index] : entry.jobs) {
        used += static_cast<int64_t>(HeldSlotsLocked(job_id, gpu_index).size());
      }
      busy_slots += used;
      free_slots += std::max<int64_t>(0, entry.info.capacity() - used);
      continue;
    }
    for (const v1::Gpu& gpu : entry.info.gpus()) {
      bool used = false;
      int64_t reserved = 0;
      for (const auto& [job_id, gpu_index] : entry.jobs) {
        const std::vector<int32_t> held = HeldSlotsLocked(job_id, gpu_index);
        if (std::find(held.begin(), held.end(), gpu.index()) == held.end()) continue;
        used = true;
        if (auto job = active_.find(job_id); job != active_.end()) {
          reserved += job->second.job.estimated_gpu_memory_bytes();
        }
      }
      (used ? busy_slots : free_slots) += 1;
      const metrics::Labels labels = {{"worker", id}, {"gpu", std::to_string(gpu.index())}};
      if (auto g = metrics_.gpu_memory_reserved_bytes.Add(labels); g.ok()) {
        (*g)->Set(static_cast<double>(reserved));
      }
    }
  }
  metrics_.jobs_queued.Set(static_cast<double>(queued));
  metrics_.jobs_running.Set(static_cast<double>(running));
  metrics_.workers_idle.Set(static_cast<double>(idle));
  metrics_.workers_busy.Set(static_cast<double>(busy));
  metrics_.gpus_free.Set(static_cast<double>(free_slots));
  metrics_.gpus_busy.Set(static_cast<double>(busy_slots));
  metrics_.gpu_memory_used.Set(static_cast<double>(memory_used));
  metrics_.gpu_memory_free.Set(static_cast<double>(memory_free));
}

}  // namespace quantd::server
