#include "metrics/quantd_metrics.h"

#include <utility>

namespace quantd::metrics {
namespace {

#ifndef QUANTD_VERSION
#define QUANTD_VERSION "unknown"
#endif

// Bucket bounds in seconds, chosen for what each histogram measures.
const BucketBounds kQueueWaitBuckets = {0.1, 0.5, 1,   5,    15,   30,  60,
                                        120, 300, 600, 1800, 3600, 7200};
const BucketBounds kJobDurationBuckets = {1,   5,    15,   30,   60,   120,   300,
                                          600, 1200, 1800, 3600, 7200, 14400, 28800};
const BucketBounds kGrpcBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                   0.1,    0.25,  0.5,    1,     2.5,  5,     10};
const BucketBounds kStoreBuckets = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                    0.025,  0.05,    0.1,    0.25,  0.5,    1};
// Percent by which a job's quantized model's held-out perplexity exceeds the float model's.
const BucketBounds kPerplexityIncreaseBuckets = {0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 25, 50, 100};
const BucketBounds kLayerBuckets = {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600};

// Registers families and children, remembering the first error so that Create() can declare
// everything in one readable block and check once.
class Declarations {
 public:
  explicit Declarations(Registry& registry) : registry_(registry) {}

  Family<Counter>* CounterFamily(std::string name, std::string help,
                                 std::vector<std::string> labels = {}) {
    return Keep(registry_.AddCounterFamily(std::move(name), std::move(help), std::move(labels)));
  }
  Family<Gauge>* GaugeFamily(std::string name, std::string help,
                             std::vector<std::string> labels = {}) {
    return Keep(registry_.AddGaugeFamily(std::move(name), std::move(help), std::move(labels)));
  }
  Family<Histogram>* HistogramFamily(std::string name, std::string help,
                                     std::vector<std::string> labels, const BucketBounds& bounds) {
    return Keep(
        registry_.AddHistogramFamily(std::move(name), std::move(help), std::move(labels), bounds));
  }
  template <typename T>
  T* Child(Family<T>* family, const Labels& labels = {}) {
    if (family == nullptr) return nullptr;
    return Keep(family->Add(labels));
  }

  const absl::Status& status() const { return status_; }

 private:
  template <typename T>
  T* Keep(absl::StatusOr<T*> result) {
    if (result.ok()) return *result;
    if (status_.ok()) status_ = result.status();
    return nullptr;
  }

  Registry& registry_;
  absl::Status status_;
};

}  // namespace

std::string_view JobOutcomeName(JobOutcome outcome) {
  switch (outcome) {
    case JobOutcome::kSucceeded:
      return "succeeded";
    case JobOutcome::kFailed:
      return "failed";
    case JobOutcome::kCancelled:
      return "cancelled";
  }
  return "failed";
}

absl::StatusOr<std::unique_ptr<ServerMetrics>> ServerMetrics::Create(Registry& registry) {
  Declarations d(registry);
  auto* submitted = d.CounterFamily("quantd_jobs_submitted_total", "Jobs accepted by SubmitJob.");
  auto* finished = d.CounterFamily("quantd_jobs_finished_total",
                                   "Jobs that reached a terminal state, by outcome.", {"outcome"});
  auto* jobs = d.GaugeFamily("quantd_jobs", "Jobs not yet finished, by state.", {"state"});
  auto* queued_jobs =
      d.GaugeFamily("quantd_queued_jobs", "Queued jobs, by why they wait.", {"reason"});
  auto* gpu_reserved =
      d.GaugeFamily("quantd_gpu_memory_reserved_bytes",
                    "GPU memory the scheduler reserved for the jobs it placed, by worker and GPU.",
                    {"worker", "gpu"});
  auto* queue_wait = d.HistogramFamily(
      "quantd_job_queue_wait_seconds",
      "Seconds a job waited in the queue before it was placed on a worker.", {}, kQueueWaitBuckets);
  auto* duration = d.HistogramFamily("quantd_job_duration_seconds",
                                     "Seconds from a job's first placement to its terminal state.",
                                     {"outcome"}, kJobDurationBuckets);
  auto* attempts = d.CounterFamily("quantd_job_attempts_total",
                                   "Job attempts started on a worker, retries included.");
  auto* requeues = d.CounterFamily("quantd_job_requeues_total",
                                   "Jobs put back in the queue after their attempt was lost.");
  auto* workers = d.GaugeFamily("quantd_workers", "Connected workers, by state.", {"state"});
  auto* gpus = d.GaugeFamily("quantd_gpus", "GPU slots of connected workers, by state.", {"state"});
  auto* gpu_memory = d.GaugeFamily(
      "quantd_gpu_memory_bytes",
      "Device memory of connected workers' GPUs that report it, by state (used, free).", {"state"});
  auto* watchers = d.GaugeFamily("quantd_watchers", "Open WatchJob streams.");
  auto* grpc_requests =
      d.CounterFamily("quantd_grpc_requests_total",
                      "Finished gRPC calls, by method and status code.", {"method", "code"});
  auto* grpc_duration = d.HistogramFamily("quantd_grpc_request_duration_seconds",
                                          "Seconds from a gRPC call's start to its status.",
                                          {"method"}, kGrpcBuckets);
  auto* store = d.HistogramFamily("quantd_store_operation_duration_seconds",
                                  "Seconds a job store operation took, by operation.",
                                  {"operation"}, kStoreBuckets);
  auto* ppl_increase = d.HistogramFamily(
      "quantd_job_perplexity_increase_percent",
      "Percent by which a finished job's quantized model's held-out perplexity exceeds the float "
      "model's (the quality report).",
      {}, kPerplexityIncreaseBuckets);
  auto* build = d.GaugeFamily("quantd_build_info",
                              "Always 1; the version label names the running build.", {"version"});

  auto outcome = [](JobOutcome o) { return Labels{{"outcome", std::string(JobOutcomeName(o))}}; };
  Counter* succeeded = d.Child(finished, outcome(JobOutcome::kSucceeded));
  Counter* failed = d.Child(finished, outcome(JobOutcome::kFailed));
  Counter* cancelled = d.Child(finished, outcome(JobOutcome::kCancelled));
  for (JobOutcome o : {JobOutcome::kSucceeded, JobOutcome::kFailed, JobOutcome::kCancelled}) {
    d.Child(duration, outcome(o));
  }
  Gauge* queued = d.Child(jobs, {{"state", "queued"}});
  for (std::string_view reason : kQueueReasonLabels) {
    d.Child(queued_jobs, {{"reason", std::string(reason)}});
  }
  Gauge* running = d.Child(jobs, {{"state", "running"}});
  Gauge* idle = d.Child(workers, {{"state", "idle"}});
  Gauge* busy = d.Child(workers, {{"state", "busy"}});
  Gauge* gpus_free = d.Child(gpus, {{"state", "free"}});
  Gauge* gpus_busy = d.Child(gpus, {{"state", "busy"}});
  Gauge* gpu_memory_used = d.Child(gpu_memory, {{"state", "used"}});
  Gauge* gpu_memory_free = d.Child(gpu_memory, {{"state", "free"}});
  Gauge* build_info = d.Child(build, {{"version", QUANTD_VERSION}});
  Counter* submitted_child = d.Child(submitted);
  Histogram* queue_wait_child = d.Child(queue_wait);
  Histogram* ppl_increase_child = d.Child(ppl_increase);
  Counter* attempts_child = d.Child(attempts);
  Counter* requeues_child = d.Child(requeues);
  Gauge* watchers_child = d.Child(watchers);
  if (!d.status().ok()) return d.status();
  build_info->Set(1);

  return std::unique_ptr<ServerMetrics>(new ServerMetrics{
      .jobs_submitted = *submitted_child,
      .jobs_succeeded = *succeeded,
      .jobs_failed = *failed,
      .jobs_cancelled = *cancelled,
      .jobs_queued = *queued,
      .jobs_running = *running,
      .queued_jobs = *queued_jobs,
      .gpu_memory_reserved_bytes = *gpu_reserved,
      .job_queue_wait_seconds = *queue_wait_child,
      .job_duration_seconds = *duration,
      .job_attempts = *attempts_child,
      .job_requeues = *requeues_child,
      .workers_idle = *idle,
      .workers_busy = *busy,
      .gpus_free = *gpus_free,
      .gpus_busy = *gpus_busy,
      .gpu_memory_used = *gpu_memory_used,
      .gpu_memory_free = *gpu_memory_free,
      .watchers = *watchers_child,
      .grpc_requests = *grpc_requests,
      .grpc_request_duration_seconds = *grpc_duration,
      .store_operation_duration_seconds = *store,
      .job_perplexity_increase_percent = *ppl_increase_child,
      .build_info = *build_info,
  });
}

Counter& ServerMetrics::JobsFinished(JobOutcome outcome) {
  switch (outcome) {
    case JobOutcome::kSucceeded:
      return jobs_succeeded;
    case JobOutcome::kFailed:
      return jobs_failed;
    case JobOutcome::kCancelled:
      return jobs_cancelled;
  }
  return jobs_failed;
}

Histogram& ServerMetrics::JobDuration(JobOutcome outcome) {
  // Created in Create(), so the lookup cannot fail.
  return **job_duration_seconds.Add({{"outcome", std::string(JobOutcomeName(outcome))}});
}

void ServerMetrics::ObserveGrpcRequest(std::string_view method, std::string_view code,
                                       double seconds) {
  absl::StatusOr<Counter*> counter =
      grpc_requests.Add({{"method", std::string(method)}, {"code", std::string(code)}});
  if (counter.ok()) (*counter)->Increment();
  absl::StatusOr<Histogram*> latency =
      grpc_request_duration_seconds.Add({{"method", std::string(method)}});
  if (latency.ok()) (*latency)->Observe(seconds);
}

void ServerMetrics::ObserveStoreOperation(std::string_view operation, double seconds) {
  absl::StatusOr<Histogram*> latency =
      store_operation_duration_seconds.Add({{"operation", std::string(operation)}});
  if (latency.ok()) (*latency)->Observe(seconds);
}

absl::StatusOr<std::unique_ptr<WorkerMetrics>> WorkerMetrics::Create(Registry& registry) {
  Declarations d(registry);
  auto* layer = d.HistogramFamily("quantd_worker_layer_duration_seconds",
                                  "Seconds the engine spent quantizing one decoder layer.", {},
                                  kLayerBuckets);
  auto* tokens = d.CounterFamily("quantd_worker_tokens_processed_total",
                                 "Calibration tokens run through the model's layers.");
  auto* used = d.GaugeFamily("quantd_worker_gpu_memory_used_bytes",
                             "Bytes of GPU memory in use, per GPU.", {"gpu"});
  auto* peak =
      d.GaugeFamily("quantd_worker_gpu_memory_peak_bytes",
                    "Peak bytes of GPU memory in use since the current job started.", {"gpu"});
  auto* progress = d.GaugeFamily("quantd_worker_job_progress_ratio",
                                 "Fraction (0 to 1) of the current job that is done.");
  auto* running = d.GaugeFamily("quantd_worker_jobs_running", "Jobs running on this worker.");
  auto* finished = d.CounterFamily("quantd_worker_jobs_finished_total",
                                   "Jobs this worker finished, by outcome.", {"outcome"});
  auto* connected =
      d.GaugeFamily("quantd_worker_connected", "1 while the worker's stream to the server is up.");
  auto* reconnects = d.CounterFamily("quantd_worker_reconnects_total",
                                     "Times the worker re-opened its stream to the server.");
  auto* build = d.GaugeFamily("quantd_worker_build_info",
                              "Always 1; the version label names the running build.", {"version"});
  for (JobOutcome o : {JobOutcome::kSucceeded, JobOutcome::kFailed, JobOutcome::kCancelled}) {
    d.Child(finished, {{"outcome", std::string(JobOutcomeName(o))}});
  }
  Gauge* build_info = d.Child(build, {{"version", QUANTD_VERSION}});
  Histogram* layer_child = d.Child(layer);
  Counter* tokens_child = d.Child(tokens);
  Gauge* progress_child = d.Child(progress);
  Gauge* running_child = d.Child(running);
  Gauge* connected_child = d.Child(connected);
  Counter* reconnects_child = d.Child(reconnects);
  if (!d.status().ok()) return d.status();
  build_info->Set(1);

  return std::unique_ptr<WorkerMetrics>(new WorkerMetrics{
      .layer_duration_seconds = *layer_child,
      .tokens_processed = *tokens_child,
      .gpu_memory_used_bytes = *used,
      .gpu_memory_peak_bytes = *peak,
      .job_progress_ratio = *progress_child,
      .jobs_running = *running_child,
      .jobs_finished = *finished,
      .connected = *connected_child,
      .reconnects = *reconnects_child,
      .build_info = *build_info,
  });
}

}  // namespace quantd::metrics
