#include "worker_metrics_recorder.h"

#include <algorithm>

namespace quantd::worker {

WorkerMetricsRecorder::WorkerMetricsRecorder(metrics::WorkerMetrics& metrics,
                                             const std::vector<int32_t>& gpu_indexes)
    : metrics_(metrics) {
  std::lock_guard<std::mutex> lock(mu_);
  for (int32_t index : gpu_indexes) GpuLocked(index);
}

WorkerMetricsRecorder::GpuGauges& WorkerMetricsRecorder::GpuLocked(int32_t index) {
  GpuGauges& gauges = gpus_[index];
  if (gauges.used == nullptr) {
    const metrics::Labels labels = {{"gpu", std::to_string(index)}};
    gauges.used = *metrics_.gpu_memory_used_bytes.Add(labels);
    gauges.peak = *metrics_.gpu_memory_peak_bytes.Add(labels);
  }
  return gauges;
}

int64_t WorkerMetricsRecorder::GpuBytesLocked(int32_t index) const {
  int64_t bytes = 0;
  for (const auto& [id, job] : jobs_) {
    if (job.gpu_index == index) bytes += job.gpu_bytes;
  }
  return bytes;
}

void WorkerMetricsRecorder::Connected() {
  metrics_.connected.Set(1);
  connected_ = true;
  if (ever_connected_.exchange(true)) metrics_.reconnects.Increment();
}

void WorkerMetricsRecorder::Disconnected() {
  metrics_.connected.Set(0);
  connected_ = false;
}

void WorkerMetricsRecorder::JobStarted(const std::string& job_id, int32_t gpu_index) {
  std::lock_guard<std::mutex> lock(mu_);
  jobs_.erase(job_id);
  if (gpu_index >= 0) {
    const bool gpu_idle = std::none_of(jobs_.begin(), jobs_.end(), [&](const auto& entry) {
      return entry.second.gpu_index == gpu_index;
    });
    if (gpu_idle) GpuLocked(gpu_index).peak->Set(0);  // A new busy period: a new peak.
  }
  jobs_[job_id] = RunningJob{gpu_index, 0, 0};
}

void WorkerMetricsRecorder::JobProgress(const std::string& job_id, double fraction) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(job_id);
  if (it != jobs_.end()) it->second.fraction = std::clamp(fraction, 0.0, 1.0);
}

void WorkerMetricsRecorder::JobLayerDone(const std::string& job_id, const LayerDone& layer) {
  metrics_.layer_duration_seconds.Observe(layer.seconds);
  metrics_.tokens_processed.Increment(static_cast<double>(layer.tokens));
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end() || it->second.gpu_index < 0 || !layer.gpu_memory_bytes.has_value()) return;
  it->second.gpu_bytes = *layer.gpu_memory_bytes;
  const int64_t used = GpuBytesLocked(it->second.gpu_index);
  GpuGauges& gauges = GpuLocked(it->second.gpu_index);
  gauges.used->Set(static_cast<double>(used));
  gauges.peak->SetToMax(
      static_cast<double>(std::max(used, layer.gpu_memory_peak_bytes.value_or(0))));
}

void WorkerMetricsRecorder::JobFinished(const std::string& job_id, v1::JobState state) {
  metrics::JobOutcome outcome = metrics::JobOutcome::kFailed;
  if (state == v1::JOB_STATE_SUCCEEDED) outcome = metrics::JobOutcome::kSucceeded;
  if (state == v1::JOB_STATE_CANCELLED) outcome = metrics::JobOutcome::kCancelled;
  (*metrics_.jobs_finished.Add({{"outcome", std::string(metrics::JobOutcomeName(outcome))}}))
      ->Increment();
  JobForgotten(job_id);
}

void WorkerMetricsRecorder::JobForgotten(const std::string& job_id) {
  std::lock_guard<std::mutex> lock(mu_);
  jobs_.erase(job_id);
}

void WorkerMetricsRecorder::Collect() {
  std::lock_guard<std::mutex> lock(mu_);
  double fractions = 0;
  for (const auto& [id, job] : jobs_) fractions += job.fraction;
  metrics_.jobs_running.Set(static_cast<double>(jobs_.size()));
  // With several jobs at once, their mean.
  metrics_.job_progress_ratio.Set(jobs_.empty() ? 0 : fractions / jobs_.size());
  for (auto& [index, gauges] : gpus_) {
    gauges.used->Set(static_cast<double>(GpuBytesLocked(index)));
  }
}

}  // namespace quantd::worker
