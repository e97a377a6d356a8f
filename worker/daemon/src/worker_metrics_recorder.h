// WorkerMetricsRecorder: feeds quantd-worker's metrics (metrics::WorkerMetrics, docs/metrics.md)
// from what the WorkerAgent sees: the stream to the server, jobs starting and ending, the engine's
// progress and its per-layer events (docs/engine-events.md).
//
// GPU memory: a GPU's "in use" is the sum of what the engine processes of its running jobs last
// reported; its peak is the highest use reported since the GPU last went from idle to busy.
//
// Thread-safety: every method may be called from any thread (one mutex; it calls nothing back).
#ifndef QUANTD_WORKER_DAEMON_WORKER_METRICS_RECORDER_H_
#define QUANTD_WORKER_DAEMON_WORKER_METRICS_RECORDER_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "engine_events.h"
#include "metrics/quantd_metrics.h"

namespace quantd::worker {

class WorkerMetricsRecorder {
 public:
  // `gpu_indexes`: the GPUs this worker offers; their memory series exist from the start.
  // `metrics` must outlive the recorder.
  WorkerMetricsRecorder(metrics::WorkerMetrics& metrics, const std::vector<int32_t>& gpu_indexes);

  // The stream to the server is up (every time after the first counts as a reconnect) or gone.
  void Connected();
  void Disconnected();
  bool connected() const { return connected_.load(); }

  // A job's engine started on `gpu_index` (-1: a CPU slot). Replaces an earlier attempt.
  void JobStarted(const std::string& job_id, int32_t gpu_index);
  void JobProgress(const std::string& job_id, double fraction);
  void JobLayerDone(const std::string& job_id, const LayerDone& layer);
  // The engine ended: counted in quantd_worker_jobs_finished_total by outcome.
  void JobFinished(const std::string& job_id, v1::JobState state);
  // The server took the job away (it is stopped, not finished here): not counted.
  void JobForgotten(const std::string& job_id);

  // Copies jobs running, progress and GPU memory in use into the gauges (a collect callback).
  void Collect();

 private:
  struct RunningJob {
    int32_t gpu_index = -1;
    double fraction = 0;
    int64_t gpu_bytes = 0;  // In use, as last reported.
  };
  struct GpuGauges {
    metrics::Gauge* used = nullptr;
    metrics::Gauge* peak = nullptr;
  };
  GpuGauges& GpuLocked(int32_t index);
  int64_t GpuBytesLocked(int32_t index) const;

  metrics::WorkerMetrics& metrics_;
  std::atomic<bool> connected_{false};
  std::atomic<bool> ever_connected_{false};
  std::mutex mu_;
  std::map<std::string, RunningJob> jobs_;
  std::map<int32_t, GpuGauges> gpus_;
};

}  // namespace quantd::worker

#endif  // QUANTD_WORKER_DAEMON_WORKER_METRICS_RECORDER_H_
