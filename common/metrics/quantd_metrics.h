// Every metric quantd exports, declared in one place: names, help, labels and buckets. The server
// and the worker each build their struct once on their Registry and update the members directly.
// docs/metrics.md describes each metric with example PromQL; tests check that the dashboards and
// alert rules in deploy/ name only metrics declared here.
#ifndef QUANTD_COMMON_METRICS_QUANTD_METRICS_H_
#define QUANTD_COMMON_METRICS_QUANTD_METRICS_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "metrics/registry.h"

namespace quantd::metrics {

// Outcome label values of finished jobs (quantd_jobs_finished_total, quantd_job_duration_seconds).
enum class JobOutcome { kSucceeded, kFailed, kCancelled };
std::string_view JobOutcomeName(JobOutcome outcome);

// Label values of quantd_queued_jobs{reason} (the scheduler's wait reasons).
inline constexpr std::string_view kQueueReasonLabels[] = {"no_worker", "waiting_for_capacity",
                                                          "gpu_too_small", "too_few_gpus"};

// Metrics of the quantd server process.
struct ServerMetrics {
  static absl::StatusOr<std::unique_ptr<ServerMetrics>> Create(Registry& registry);

  // Jobs accepted by SubmitJob (idempotent repeats of a request_id are not counted again).
  Counter& jobs_submitted;
  // Jobs that reached a terminal state, by outcome.
  Counter& jobs_succeeded;
  Counter& jobs_failed;
  Counter& jobs_cancelled;
  Counter& JobsFinished(JobOutcome outcome);
  // Jobs by non-terminal state.
  Gauge& jobs_queued;
  Gauge& jobs_running;
  // Queued jobs by why they wait (Job.queue_reason): "no_worker", "waiting_for_capacity",
  // "gpu_too_small", "too_few_gpus" (kQueueReasonLabels).
  Family<Gauge>& queued_jobs;
  // GPU memory the scheduler reserved for the jobs it placed, by worker and GPU index.
  Family<Gauge>& gpu_memory_reserved_bytes;
  // Seconds from submission (or requeue) to placement on a worker.
  Histogram& job_queue_wait_seconds;
  // Seconds from first placement to the terminal state, by outcome.
  Family<Histogram>& job_duration_seconds;
  Histogram& JobDuration(JobOutcome outcome);
  // Attempts started (a job's first run and every retry) and requeues after a lost worker.
  Counter& job_attempts;
  Counter& job_requeues;
  // Connected workers by state (idle: no job; busy: at least one job) and their GPU slots.
  Gauge& workers_idle;
  Gauge& workers_busy;
  Gauge& gpus_free;
  Gauge& gpus_busy;
  // Device memory of connected workers' GPUs, used and free, as their heartbeats report it
  // (NVML: every process on the device); GPUs whose worker reports none are left out.
  Gauge& gpu_memory_used;
  Gauge& gpu_memory_free;
  // Open WatchJob streams.
  Gauge& watchers;
  // Finished gRPC calls by method (e.g. "SubmitJob") and status code name (e.g. "OK").
  Family<Counter>& grpc_requests;
  // gRPC call latency by method.
  Family<Histogram>& grpc_request_duration_seconds;
  // Job store operation latency by operation (e.g. "insert_job", "append_event", "list_jobs").
  Family<Histogram>& store_operation_duration_seconds;
  // Per finished job with a quality report: percent by which the quantized model's held-out
  // perplexity exceeds the float model's.
  Histogram& job_perplexity_increase_percent;
  // Always 1; its version label says which build is running.
  Gauge& build_info;

  // Counts one finished gRPC call and its latency. Looks the children up (a shared lock); hold
  // the result of grpc_requests.Add() yourself where a call site is hot.
  void ObserveGrpcRequest(std::string_view method, std::string_view code, double seconds);
  void ObserveStoreOperation(std::string_view operation, double seconds);
};

// Metrics of the quantd-worker process. GPU gauges are per GPU index ("0", "1", ...; "cpu" for
// the CPU slot); add each device's children once at start-up.
struct WorkerMetrics {
  static absl::StatusOr<std::unique_ptr<WorkerMetrics>> Create(Registry& registry);

  // Seconds the engine spent on one decoder layer (search, clip, quantize, pack).
  Histogram& layer_duration_seconds;
  // Calibration tokens run through the model's layers.
  Counter& tokens_processed;
  // Bytes of GPU memory in use and the peak since the current job started, per GPU.
  Family<Gauge>& gpu_memory_used_bytes;
  Family<Gauge>& gpu_memory_peak_bytes;
  // Fraction 0..1 of the current job that is done (0 when idle).
  Gauge& job_progress_ratio;
  // Jobs running in child processes on this worker.
  Gauge& jobs_running;
  // Jobs this worker finished, by outcome.
  Family<Counter>& jobs_finished;
  // 1 while the WorkerService stream to the server is up.
  Gauge& connected;
  // Times the worker re-opened its stream after losing it.
  Counter& reconnects;
  Gauge& build_info;
};

}  // namespace quantd::metrics

#endif  // QUANTD_COMMON_METRICS_QUANTD_METRICS_H_
