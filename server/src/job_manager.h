// JobManager: owns the lifecycle of jobs and the server's view of its workers. The gRPC services
// are thin glue over it (grpc_services.cc); it knows nothing of gRPC.
//
// Job state machine (numbers are referenced in job_manager.cc):
//
//                 (1) SubmitJob
//                      |
//                      v        (2) placed by the Scheduler
//    (8) cancel  +--> QUEUED ---------------------------------> ASSIGNED
//   CANCELLED <--+     ^  ^                                       |   |
//                      |  |  (6) worker lost, attempt < max       |   | (3) JobStarted
//                      |  +---------------------------------------+   v
//                      +----------------------------------------- RUNNING
//                                                                 |   |
//       (7) worker lost, attempt = max:  FAILED  <---------------+   | (4) JobFinished:
//                                                                     |  SUCCEEDED | FAILED |
//                                                                     CANCELLED
//   (5) CancelJob on ASSIGNED/RUNNING --> CANCELLING --(4)/(9)--> CANCELLED
//
//   (1) stored durably with its first event (QUEUED, attempt 1) before SubmitJob returns.
//   (2) the Scheduler picks a worker and GPU; the assignment is sent on the worker's stream.
//   (3) the worker started the engine (start_time).
//   (4) the worker reports the engine's end; a CANCELLING job that finished anyway keeps its
//       SUCCEEDED/FAILED result.
//   (5) the worker is told to stop the job and remove its partial output.
//   (6)/(7) the worker's stream is gone and its lease expired (or it came back without the job):
//       the job is requeued with attempt + 1, or FAILED (UNAVAILABLE) after max_attempts.
//   (8) a queued job is cancelled at once.
//   (9) a CANCELLING job whose worker is lost becomes CANCELLED.
//  (10) a queued job that no connected worker's GPU is large enough for, for longer than
//       unplaceable_timeout, FAILS (RESOURCE_EXHAUSTED) naming the smallest GPU it needs.
//  (11) the worker reports the attempt lost (JobFinished.requeue: the engine was killed from
//       outside, its progress kept): requeued like (6), or FAILED like (7).
//
// A queued job carries why it waits (Job.queue_reason/queue_message, updated by each scheduling
// pass that changes it; a log event too when no connected worker's GPU can hold it), so GetJob,
// ListJobs and `quantctl get` show it.
//
// Every transition and every report is stored (JobStore::UpdateJob, which numbers the events)
// before it is published to watchers (JobEventHub). Recover() loads unfinished jobs before the
// server accepts requests; jobs that were on a worker wait for it to reconnect (adopted through
// WorkerHello.running_jobs) until its lease, counted from the restart, expires.
//
// Threading: all methods are thread-safe. One mutex guards the job cache and the worker table;
// store reads of finished jobs (Get, List, event replay) do not take it. A background thread runs
// the Scheduler and the lease checks (Start/Stop).
#ifndef QUANTD_SERVER_JOB_MANAGER_H_
#define QUANTD_SERVER_JOB_MANAGER_H_

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "job_event_hub.h"
#include "job_spec_validation.h"
#include "metrics/quantd_metrics.h"
#include "quantd/v1/quantization_service.pb.h"
#include "quantd/v1/worker_service.pb.h"
#include "scheduler.h"
#include "store/job_store.h"
#include "worker_outbox.h"

namespace quantd::server {

struct JobManagerOptions {
  PathPolicy paths;  // Root patterns; "{tenant}" stands for the job's tenant (allowed_roots.h).
  absl::Duration heartbeat_interval = absl::Seconds(2);
  absl::Duration lease_duration = absl::Seconds(10);
  int max_attempts = 3;
  int max_jobs_per_gpu = 0;  // Cap on jobs sharing a GPU; <= 0: as each worker advertises.
  // A job that no connected worker's GPU is large enough for (QUEUE_REASON_GPU_TOO_SMALL) FAILS
  // (RESOURCE_EXHAUSTED, naming the smallest GPU it needs) once that has lasted this long;
  // zero: it waits for a larger worker forever.
  absl::Duration unplaceable_timeout = absl::Minutes(30);
  size_t event_window = 256;  // Recent events kept in memory per unfinished job.
};

// Who submits a job and what applies to it (the gRPC glue fills it from the caller's principal).
// The default is a server without credentials.
struct SubmitContext {
  std::string tenant = "default";  // The job's tenant; its roots are options.paths for it.
  std::string owner;               // The submitting principal ("" without credentials).
  int max_queued_jobs = 0;         // Of this tenant; 0 = no limit.
};

// One open WorkerService stream, as returned by ConnectWorker.
struct WorkerSession {
  std::string worker_id;
  uint64_t session_id = 0;
  std::shared_ptr<WorkerOutbox> outbox;  // What the server sends on this stream.
};

class JobManager {
 public:
  // `metrics` (quantd_jobs*, quantd_workers, quantd_gpus, quantd_watchers) must outlive the
  // manager; the gauges of jobs, workers and GPUs are refreshed by CollectMetrics().
  JobManager(JobStore* store, JobManagerOptions options, metrics::ServerMetrics& metrics);
  ~JobManager();

  // Loads unfinished jobs from the store. Call once, before Start() and before serving.
  absl::Status Recover();
  // Starts / stops the scheduling and lease thread. Stop() also ends every Watch.
  void Start();
  void Stop();

  // QuantizationService.
  absl::StatusOr<v1::Job> Submit(const v1::SubmitJobRequest& request,
                                 const SubmitContext& context = {});
  absl::StatusOr<v1::Job> Get(const std::string& name);
  // request.tenant() non-empty: only that tenant's jobs.
  absl::StatusOr<v1::ListJobsResponse> List(const v1::ListJobsRequest& request);
  absl::StatusOr<v1::Job> Cancel(const std::string& name);
  // Streams events after `after_sequence` to `write` until the terminal event has been written
  // (OK), `write` returns false or `cancelled()` becomes true (CANCELLED), or Stop() (UNAVAILABLE).
  absl::Status Watch(const std::string& name, int64_t after_sequence,
                     const std::function<bool(const v1::JobEvent&)>& write,
                     const std::function<bool()>& cancelled);
  v1::ListWorkersResponse ListWorkers();
  // True between Start() and Stop(): jobs are accepted and scheduled.
  bool accepting() const { return accepting_.load(); }
  // Copies the jobs, workers and GPUs by state into the gauges (a Registry collect callback).
  void CollectMetrics();

  // WorkerService: a stream opened with `hello` by `principal` (its worker credential; "" without
  // credentials); fills the ServerHello to send back. A worker id stays bound to the principal
  // that connected it (until it is lost with no jobs): another principal is PERMISSION_DENIED.
  absl::StatusOr<WorkerSession> ConnectWorker(const v1::WorkerHello& hello, v1::ServerHello* reply,
                                              const std::string& principal = "");
  void HandleWorkerMessage(const WorkerSession& session, const v1::WorkerMessage& message);
  void DisconnectWorker(const WorkerSession& session);

 private:
  struct WorkerEntry {
    v1::Worker info;
    std::shared_ptr<WorkerOutbox> outbox;  // Null while disconnected.
    uint64_t session_id = 0;
    absl::Time lease_expiry;
    std::map<std::string, int32_t> jobs;  // Job id -> (first) GPU index (-1: CPU slots).
    // Device memory in use per GPU index (every process on it), from the latest heartbeat of this
    // session; empty when the worker reports none (no GPU, or no NVML).
    std::map<int32_t, int64_t> gpu_memory_used_bytes;
    std::string principal;  // The worker credential this id is bound to.
  };
  // When an unfinished job entered the queue (submission or requeue) and was first placed on a
  // worker: the start of quantd_job_queue_wait_seconds and quantd_job_duration_seconds.
  struct JobClock {
    absl::Time queued_since;
    std::optional<absl::Time> first_placed;
  };

  // Stores the record with `events`, publishes them, keeps the cache in step.
  absl::Status CommitLocked(JobRecord& record, std::vector<v1::JobEvent> events);
  // Logs an info line about the job and stores it as a log event, so watchers see it too.
  void LogToJobLocked(JobRecord& record, const std::string& message,
                      const std::string& worker_id = "");
  // Moves a job to `state` with a StateChange event.
  absl::Status TransitionLocked(JobRecord& record, v1::JobState state,
                                const v1::JobError* error = nullptr);
  // Feeds the job metrics for a stored transition of `job_id` to `state`; `clock` is the job's
  // clock before it.
  void ObserveTransitionLocked(const std::string& job_id, v1::JobState state,
                               const std::optional<JobClock>& clock);
  void RequeueOrFailLocked(JobRecord& record, const std::string& reason);
  // The GPU indices a job on a worker holds (Job.gpu_indices), or its CPU slots (JobSpec.gpus
  // times -1); `first` (WorkerEntry::jobs) alone when its record is gone.
  std::vector<int32_t> HeldSlotsLocked(const std::string& job_id, int32_t first) const;
  void ReleaseLocked(const JobRecord& record);
  void ScheduleLocked();
  // Records why a queued job waits (a log event when it changes).
  void SetQueueReasonLocked(JobRecord& record, const Waiting& waiting);
  // (10)
  void FailUnplaceableLocked(absl::Time now);
  // The memory plan's inputs for a job (cached per job id; config.json is read once).
  const JobMemoryShape& ShapeLocked(const v1::Job& job);
  void ExpireLeasesLocked(absl::Time now);
  void SendLocked(const std::string& worker_id, v1::ServerMessage message);
  v1::ServerMessage AssignmentFor(const v1::Job& job) const;
  // The cached unfinished job that `worker_id` may report on for `attempt`, or null.
  JobRecord* BoundJobLocked(const std::string& worker_id, const std::string& job_id,
                            int32_t attempt);
  void HandleReportLocked(JobRecord& record, const v1::JobReport& report);
  void HandleFinishedLocked(JobRecord& record, const v1::JobFinished& finished);
  void Loop();
  void Wake();

  JobStore* const store_;
  const JobManagerOptions options_;
  metrics::ServerMetrics& metrics_;
  Scheduler scheduler_;
  JobEventHub hub_;

  std::mutex mu_;
  std::map<std::string, JobRecord> active_;  // Unfinished jobs by id.
  std::map<std::string, WorkerEntry> workers_;
  std::map<std::string, JobClock> clocks_;        // Unfinished jobs by id.
  std::map<std::string, JobMemoryShape> shapes_;  // Unfinished jobs by id.
  uint64_t next_session_ = 0;
  bool dirty_ = false;  // Something changed that the scheduler should look at.
  bool stopping_ = false;
  std::atomic<bool> accepting_{false};
  std::condition_variable wake_;
  std::thread loop_;
};

}  // namespace quantd::server

#endif  // QUANTD_SERVER_JOB_MANAGER_H_
