// JobManager, the worker side: worker streams, reports, placement and leases.
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "allowed_roots.h"
#include "bounded_text.h"
#include "google/protobuf/util/time_util.h"
#include "job_manager.h"
#include "logging/logging.h"
#include "path_guard/beneath.h"

namespace quantd::server {
namespace {

using google::protobuf::util::TimeUtil;

bool OnWorker(v1::JobState state) {
  return state == v1::JOB_STATE_ASSIGNED || state == v1::JOB_STATE_RUNNING ||
         state == v1::JOB_STATE_CANCELLING;
}

v1::ServerMessage CancelFor(const v1::Job& job) {
  v1::ServerMessage message;
  message.mutable_cancel()->set_job_id(job.job_id());
  message.mutable_cancel()->set_attempt(job.attempt());
  return message;
}

}  // namespace

v1::ServerMessage JobManager::AssignmentFor(const v1::Job& job) const {
  v1::ServerMessage message;
  v1::JobAssignment* assignment = message.mutable_assignment();
  assignment->set_job_id(job.job_id());
  assignment->set_attempt(job.attempt());
  *assignment->mutable_spec() = job.spec();
  assignment->set_gpu_index(job.gpu_index());
  *assignment->mutable_gpu_indices() = job.gpu_indices();
  for (const std::string& root : RootsForTenant(options_.paths.allowed_roots, job.tenant())) {
    assignment->add_allowed_roots(root);
  }
  return message;
}

void JobManager::SendLocked(const std::string& worker_id, v1::ServerMessage message) {
  auto it = workers_.find(worker_id);
  if (it != workers_.end() && it->second.outbox) it->second.outbox->Push(std::move(message));
}

void JobManager::ReleaseLocked(const JobRecord& record) {
  const std::string& worker = record.job.worker();
  if (worker.size() <= 8) return;
  auto it = workers_.find(worker.substr(8));
  if (it != workers_.end()) it->second.jobs.erase(record.job.job_id());
  dirty_ = true;
}

// (6), (7), (9)
void JobManager::RequeueOrFailLocked(JobRecord& record, const std::string& reason) {
  ReleaseLocked(record);
  v1::Job& job = record.job;
  if (job.state() == v1::JOB_STATE_CANCELLING) {
    (void)TransitionLocked(record, v1::JOB_STATE_CANCELLED);
    return;
  }
  if (job.attempt() >= options_.max_attempts) {
    v1::JobError error;
    error.set_code(static_cast<int32_t>(absl::StatusCode::kUnavailable));
    error.set_message(absl::StrCat(reason, "; gave up after ", job.attempt(), " attempts"));
    (void)TransitionLocked(record, v1::JOB_STATE_FAILED, &error);
    return;
  }
  v1::JobError why;
  why.set_code(static_cast<int32_t>(absl::StatusCode::kUnavailable));
  why.set_message(reason);
  job.set_attempt(job.attempt() + 1);
  job.clear_worker();
  job.set_gpu_index(-1);
  job.clear_gpu_indices();
  job.clear_progress();
  job.clear_artifacts();
  job.clear_start_time();
  record.last_report_number = 0;
  (void)TransitionLocked(record, v1::JOB_STATE_QUEUED, &why);
}

JobRecord* JobManager::BoundJobLocked(const std::string& worker_id, const std::string& job_id,
                                      int32_t attempt) {
  auto it = active_.find(job_id);
  if (it == active_.end()) return nullptr;
  JobRecord& record = it->second;
  if (record.job.worker() != "workers/" + worker_id || record.job.attempt() != attempt ||
      !OnWorker(record.job.state())) {
    return nullptr;
  }
  return &record;
}

absl::StatusOr<WorkerSession> JobManager::ConnectWorker(const v1::WorkerHello& hello,
                                                        v1::ServerHello* reply,
                                                        const std::string& principal) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string& id = hello.worker_id();
  if (auto bound = workers_.find(id); bound != workers_.end() && !bound->second.principal.empty() &&
                                      bound->second.principal != principal) {
    return absl::PermissionDeniedError(
        absl::StrCat("worker id ", Quoted(id),
                     " is bound to another worker credential; a worker connects "
                     "only under its own id"));
  }
  WorkerEntry& entry = workers_[id];
  entry.principal = principal;
  if (entry.outbox) {
    entry.outbox->Close();  // A newer stream of the same worker replaces the old one.
  }
  entry.outbox = std::make_shared<WorkerOutbox>();
  entry.session_id = ++next_session_;
  entry.lease_expiry = absl::Now() + options_.lease_duration;
  entry.gpu_memory_used_bytes.clear();  // Known again from this session's first heartbeat.
  v1::Worker& info = entry.info;
  info.set_name("workers/" + id);
  info.set_worker_id(id);
  info.set_host(hello.host());
  info.set_version(hello.version());
  *info.mutable_gpus() = hello.gpus();
  info.set_capacity(hello.capacity() > 0 ? hello.capacity() : 1);
  info.set_max_job_gpus(hello.max_job_gpus() > 0 ? hello.max_job_gpus() : 1);
  info.set_state(v1::WORKER_STATE_CONNECTED);
  *info.mutable_connect_time() = TimeUtil::GetCurrentTime();
  *info.mutable_last_heartbeat_time() = info.connect_time();

  *reply->mutable_heartbeat_interval() =
      TimeUtil::MicrosecondsToDuration(absl::ToInt64Microseconds(options_.heartbeat_interval));
  *reply->mutable_lease_duration() =
      TimeUtil::MicrosecondsToDuration(absl::ToInt64Microseconds(options_.lease_duration));
  std::map<std::string, int32_t> listed;
  for (const v1::RunningJob& running : hello.running_jobs()) {
    listed[running.job_id()] = running.attempt();
    JobRecord* record = BoundJobLocked(id, running.job_id(), running.attempt());
    if (record == nullptr) {
      reply->add_stop_job_ids(running.job_id());  // Finished, cancelled or moved meanwhile.
      continue;
    }
    v1::AdoptedJob* adopted = reply->add_adopted_jobs();
    adopted->set_job_id(running.job_id());
    adopted->set_attempt(running.attempt());
    adopted->set_last_report_number(record->last_report_number);
    entry.jobs[running.job_id()] = record->job.gpu_index();
    if (record->job.state() == v1::JOB_STATE_CANCELLING) entry.outbox->Push(CancelFor(record->job));
    LogToJobLocked(*record, absl::StrCat("adopted from workers/", id, " after its reconnect"), id);
  }
  // Jobs this worker had but did not list: an assignment it never got is sent again; a job it
  // started and lost (the worker restarted) is requeued.
  std::vector<std::string> lost;
  for (const auto& [job_id, gpu] : entry.jobs) {
    if (listed.count(job_id) == 0) lost.push_back(job_id);
  }
  for (const std::string& job_id : lost) {
    auto it = active_.find(job_id);
    if (it == active_.end()) {
      entry.jobs.erase(job_id);
      continue;
    }
    if (it->second.job.state() == v1::JOB_STATE_ASSIGNED) {
      entry.outbox->Push(AssignmentFor(it->second.job));
      continue;
    }
    RequeueOrFailLocked(it->second,
                        absl::StrCat("workers/", id, " reconnected without the job (restarted?)"));
  }
  logging::Info(absl::StrCat("worker connected: ", hello.gpus_size(), " GPUs, capacity ",
                             info.capacity(), ", ", hello.running_jobs_size(), " running jobs"),
                {"", id});
  Wake();
  return WorkerSession{id, entry.session_id, entry.outbox};
}

void JobManager::DisconnectWorker(const WorkerSession& session) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = workers_.find(session.worker_id);
  if (it == workers_.end() || it->second.session_id != session.session_id) return;
  WorkerEntry& entry = it->second;
  if (entry.outbox) {
    entry.outbox->Close();
    entry.outbox.reset();
  }
  entry.info.set_state(v1::WORKER_STATE_DISCONNECTED);
  logging::Warning(absl::StrCat("worker stream closed; its lease runs until ",
                                absl::FormatTime(entry.lease_expiry)),
                   {"", session.worker_id});
}

void JobManager::HandleWorkerMessage(const WorkerSession& session,
                                     const v1::WorkerMessage& message) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = workers_.find(session.worker_id);
  if (it == workers_.end() || it->second.session_id != session.session_id) return;  // Replaced.
  WorkerEntry& entry = it->second;
  entry.lease_expiry = absl::Now() + options_.lease_duration;  // Any message proves liveness.
  *entry.info.mutable_last_heartbeat_time() = TimeUtil::GetCurrentTime();
  switch (message.kind_case()) {
    case v1::WorkerMessage::kJobStarted: {  // (3)
      const v1::JobStarted& started = message.job_started();
      JobRecord* record = BoundJobLocked(session.worker_id, started.job_id(), started.attempt());
      if (record != nullptr && record->job.state() == v1::JOB_STATE_ASSIGNED) {
        (void)TransitionLocked(*record, v1::JOB_STATE_RUNNING);
      }
      break;
    }
    case v1::WorkerMessage::kReport: {
      const v1::JobReport& report = message.report();
      JobRecord* record = BoundJobLocked(session.worker_id, report.job_id(), report.attempt());
      if (record != nullptr) HandleReportLocked(*record, report);
      break;
    }
    case v1::WorkerMessage::kJobFinished: {  // (4)
      const v1::JobFinished& finished = message.job_finished();
      JobRecord* record = BoundJobLocked(session.worker_id, finished.job_id(), finished.attempt());
      if (record != nullptr) HandleFinishedLocked(*record, finished);
      break;
    }
    case v1::WorkerMessage::kHeartbeat: {  // The lease renewal above, and the GPUs' memory use.
      const auto& reported = message.heartbeat().gpu_memory_used_bytes();
      std::map<int32_t, int64_t> used(reported.begin(), reported.end());
      if (used != entry.gpu_memory_used_bytes) {
        entry.gpu_memory_used_bytes = std::move(used);
        dirty_ = true;  // the scheduler counts it against the GPUs' memory
      }
      break;
    }
    default:
      break;
  }
}

void JobManager::HandleReportLocked(JobRecord& record, const v1::JobReport& report) {
  if (report.report_number() <= record.last_report_number) return;  // Resent after a reconnect.
  v1::JobEvent event;
  event.set_job(record.job.name());
  *event.mutable_time() = TimeUtil::GetCurrentTime();
  switch (report.kind_case()) {
    case v1::JobReport::kProgress:
      *event.mutable_progress() = report.progress();
      *record.job.mutable_progress() = report.progress();
      break;
    case v1::JobReport::kLog:
      *event.mutable_log() = report.log();
      break;
    case v1::JobReport::kArtifact:
      if (!path_guard::LexicallyInside(report.artifact().path(), record.job.spec().output_dir())) {
        logging::Warning(absl::StrCat("ignored an artifact outside the job's output_dir: ",
                                      Quoted(report.artifact().path())),
                         {record.job.job_id(), ""});
        return;
      }
      *event.mutable_artifact() = report.artifact();
      *record.job.add_artifacts() = report.artifact();
      break;
    default:
      return;
  }
  record.last_report_number = report.report_number();
  (void)CommitLocked(record, {std::move(event)});
}

void JobManager::HandleFinishedLocked(JobRecord& record, const v1::JobFinished& finished) {
  ReleaseLocked(record);
  v1::JobState state = finished.state();
  if (finished.requeue() && state == v1::JOB_STATE_FAILED) {  // (11)
    RequeueOrFailLocked(
        record, absl::StrCat("attempt ", record.job.attempt(), " was lost on ", record.job.worker(),
                             ": ", finished.error().message()));
    return;
  }
  if (state != v1::JOB_STATE_SUCCEEDED && state != v1::JOB_STATE_CANCELLED) {
    state = v1::JOB_STATE_FAILED;
  }
  v1::JobError error = finished.error();
  if (state == v1::JOB_STATE_SUCCEEDED) {
    *record.job.mutable_artifacts() = finished.artifacts();
    for (const v1::Artifact& artifact : finished.artifacts()) {
      if (path_guard::LexicallyInside(artifact.path(), record.job.spec().output_dir())) continue;
      state = v1::JOB_STATE_FAILED;
      record.job.clear_artifacts();
      error.set_code(static_cast<int32_t>(absl::StatusCode::kDataLoss));
      error.set_message(absl::StrCat("the worker reported an artifact outside output_dir: ",
                                     Quoted(artifact.path())));
      break;
    }
  }
  if (finished.has_quality() && state != v1::JOB_STATE_CANCELLED) {
    *record.job.mutable_quality() = finished.quality();
    metrics_.job_perplexity_increase_percent.Observe(
        finished.quality().perplexity_increase_percent());
  }
  if (state == v1::JOB_STATE_FAILED && error.message().empty()) {
    error.set_code(static_cast<int32_t>(absl::StatusCode::kInternal));
    error.set_message("the worker reported a failure without a reason");
  }
  (void)TransitionLocked(record, state, state == v1::JOB_STATE_FAILED ? &error : nullptr);
}

std::vector<int32_t> JobManager::HeldSlotsLocked(const std::string& job_id, int32_t first) const {
  auto it = active_.find(job_id);
  if (it == active_.end()) return {first};
  const v1::Job& job = it->second.job;
  if (first >= 0) {
    if (job.gpu_indices().empty()) return {first};
    return {job.gpu_indices().begin(), job.gpu_indices().end()};
  }
  return std::vector<int32_t>(static_cast<size_t>(std::max(1, job.spec().gpus())), -1);
}

const JobMemoryShape& JobManager::ShapeLocked(const v1::Job& job) {
  auto it = shapes_.find(job.job_id());
  if (it != shapes_.end()) return it->second;
  absl::StatusOr<JobMemoryShape> shape = JobMemoryShapeOf(job.spec());
  if (!shape.ok()) {
    // Validated at submission; unreadable now (a recovered job whose model went away): placed
    // as a job of no size, the engine reports what is missing.
    logging::Warning(absl::StrCat("cannot size the job: ", shape.status().message()),
                     {job.job_id(), ""});
    shape = JobMemoryShape{};
  }
  return shapes_[job.job_id()] = *std::move(shape);
}

// (2)
void JobManager::ScheduleLocked() {
  std::vector<QueuedJob> queue;
  for (const auto& [id, record] : active_) {
    if (record.job.state() != v1::JOB_STATE_QUEUED) continue;
    const JobMemoryShape& shape = ShapeLocked(record.job);
    queue.push_back({id, record.job.spec().priority(), CreateMicros(record.job), shape.geometry,
                     shape.blocks, shape.len, std::max(1, record.job.spec().gpus())});
  }
  if (queue.empty()) return;
  std::vector<WorkerView> views;
  for (const auto& [id, entry] : workers_) {
    if (!entry.outbox) continue;
    WorkerView view;
    view.worker_id = id;
    view.cpu_slots = entry.info.capacity();
    view.slots_per_gpu = entry.info.capacity();
    view.max_job_gpus = entry.info.max_job_gpus();
    for (const v1::Gpu& gpu : entry.info.gpus()) {
      auto used = entry.gpu_memory_used_bytes.find(gpu.index());
      view.gpus.push_back({gpu.index(), gpu.memory_bytes(), 0, 0,
                           used == entry.gpu_memory_used_bytes.end() ? 0 : used->second});
    }
    for (const auto& [job_id, gpu_index] : entry.jobs) {
      auto job = active_.find(job_id);
      const int64_t reserved =
          job == active_.end() ? 0 : job->second.job.estimated_gpu_memory_bytes();
      for (const int32_t held : HeldSlotsLocked(job_id, gpu_index)) {
        if (held < 0) ++view.cpu_running;
        for (GpuSlotView& gpu : view.gpus) {
          if (gpu.index == held) {
            ++gpu.running_jobs;
            gpu.reserved_bytes += reserved;
          }
        }
      }
    }
    views.push_back(std::move(view));
  }
  ScheduleResult result = scheduler_.Schedule(std::move(queue), std::move(views));
  for (const Placement& placement : result.placements) {
    JobRecord& record = active_.at(placement.job_id);
    record.job.set_worker("workers/" + placement.worker_id);
    record.job.set_worker_principal(workers_.at(placement.worker_id).principal);
    record.job.set_gpu_index(placement.gpu_index);
    *record.job.mutable_gpu_indices() = {placement.gpu_indices.begin(),
                                         placement.gpu_indices.end()};
    if (placement.gpu_index >= 0)
      record.job.set_estimated_gpu_memory_bytes(placement.reserved_bytes);
    if (!TransitionLocked(record, v1::JOB_STATE_ASSIGNED).ok()) continue;
    WorkerEntry& entry = workers_.at(placement.worker_id);
    entry.jobs[placement.job_id] = placement.gpu_index;
    entry.outbox->Push(AssignmentFor(record.job));
  }
  for (const Waiting& waiting : result.waiting) {
    SetQueueReasonLocked(active_.at(waiting.job_id), waiting);
  }
}

namespace {

double GiB(int64_t bytes) { return static_cast<double>(bytes) / memory_plan::kGiB; }

}  // namespace

void JobManager::SetQueueReasonLocked(JobRecord& record, const Waiting& waiting) {
  v1::Job& job = record.job;
  v1::QueueReason reason = v1::QUEUE_REASON_NO_WORKER;
  std::string message = "waiting for a worker: none is connected";
  switch (waiting.reason) {
    case WaitReason::kNoWorker:
      break;
    case WaitReason::kWaitingForCapacity:
      reason = v1::QUEUE_REASON_WAITING_FOR_CAPACITY;
      message = absl::StrFormat(
          "waiting for room: every worker that can run it is busy (it needs %s)",
          job.spec().gpus() > 1
              ? absl::StrFormat("%d GPU slots of one worker with about %.1f GiB free each, or %d "
                                "CPU slots",
                                job.spec().gpus(), GiB(job.min_gpu_memory_bytes()),
                                job.spec().gpus())
              : absl::StrFormat("a GPU slot with about %.1f GiB free, or a CPU slot",
                                GiB(job.min_gpu_memory_bytes())));
      break;
    case WaitReason::kTooFewGpus:
      reason = v1::QUEUE_REASON_TOO_FEW_GPUS;
      message = absl::StrFormat(
          "no connected worker runs a job on %d GPUs (spec.gpus): the most one connected worker "
          "gives one job is %d",
          std::max(1, job.spec().gpus()), waiting.most_job_gpus);
      break;
    case WaitReason::kGpuTooSmall:
      reason = v1::QUEUE_REASON_GPU_TOO_SMALL;
      message = absl::StrFormat(
          "no connected worker has a GPU large enough: by the engine's memory plan for %s at "
          "%lld-token blocks it needs a GPU of at least %.1f GiB; the largest connected GPU has "
          "%.1f GiB",
          ShapeLocked(job).model, static_cast<long long>(job.spec().max_seq_len()),
          GiB(job.min_gpu_memory_bytes()), GiB(waiting.largest_gpu_bytes));
      break;
  }
  if (job.queue_reason() == reason && job.queue_message() == message) return;
  if (job.queue_reason() != reason) {
    // absl's clock: protobuf's GetCurrentTime() has whole seconds only.
    *job.mutable_queue_reason_time() =
        TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(absl::Now()));
  }
  job.set_queue_reason(reason);
  job.set_queue_message(message);
  // A job that no worker can hold is news for whoever watches it; waiting for a worker or for
  // room is what a queue is (stored for GetJob and ListJobs, not an event each time it changes).
  if (reason == v1::QUEUE_REASON_GPU_TOO_SMALL || reason == v1::QUEUE_REASON_TOO_FEW_GPUS) {
    LogToJobLocked(record, absl::StrCat("queued: ", message));
  } else {
    (void)CommitLocked(record, {});
  }
}

// (10)
void JobManager::FailUnplaceableLocked(absl::Time now) {
  if (options_.unplaceable_timeout <= absl::ZeroDuration()) return;
  std::vector<std::string> expired;
  for (const auto& [id, record] : active_) {
    const v1::Job& job = record.job;
    if (job.state() != v1::JOB_STATE_QUEUED ||
        (job.queue_reason() != v1::QUEUE_REASON_GPU_TOO_SMALL &&
         job.queue_reason() != v1::QUEUE_REASON_TOO_FEW_GPUS)) {
      continue;
    }
    const absl::Time since =
        absl::FromUnixMicros(TimeUtil::TimestampToMicroseconds(job.queue_reason_time()));
    if (now - since >= options_.unplaceable_timeout) expired.push_back(id);
  }
  for (const std::string& id : expired) {
    JobRecord& record = active_.at(id);
    v1::JobError error;
    error.set_code(static_cast<int32_t>(absl::StatusCode::kResourceExhausted));
    error.set_message(absl::StrCat("gave up after ",
                                   absl::FormatDuration(options_.unplaceable_timeout), ": ",
                                   record.job.queue_message()));
    (void)TransitionLocked(record, v1::JOB_STATE_FAILED, &error);
  }
}

void JobManager::ExpireLeasesLocked(absl::Time now) {
  for (auto& [id, entry] : workers_) {
    if (entry.outbox || entry.info.state() == v1::WORKER_STATE_LOST || now < entry.lease_expiry) {
      continue;
    }
    entry.info.set_state(v1::WORKER_STATE_LOST);
    logging::Warning("worker lost: stream gone and lease expired; requeueing its jobs", {"", id});
    std::vector<std::string> jobs;
    for (const auto& [job_id, gpu] : entry.jobs) jobs.push_back(job_id);
    for (const std::string& job_id : jobs) {
      auto it = active_.find(job_id);
      if (it != active_.end()) {
        RequeueOrFailLocked(it->second,
                            absl::StrCat("workers/", id, " was lost (stream gone, lease expired)"));
      }
    }
    entry.jobs.clear();
    entry.principal.clear();  // The id may now be claimed by another worker credential.
    dirty_ = true;
  }
}

}  // namespace quantd::server
