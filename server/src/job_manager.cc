#include "job_manager.h"

#include <random>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "allowed_roots.h"
#include "google/protobuf/util/message_differencer.h"
#include "google/protobuf/util/time_util.h"
#include "logging/logging.h"

namespace quantd::server {
namespace {

using google::protobuf::util::TimeUtil;

google::protobuf::Timestamp Now() { return TimeUtil::GetCurrentTime(); }

absl::StatusOr<std::string> JobIdFromName(const std::string& name) {
  std::string id = absl::StartsWith(name, "jobs/") ? name.substr(5) : name;
  if (id.empty() || id.find('/') != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("name: \"", name, "\" is not a job name (expected \"jobs/{job_id}\")"));
  }
  return id;
}

// Time-ordered, never reused: creation microseconds and 24 random bits, in hex.
std::string NewJobId() {
  static std::mutex mu;
  static std::mt19937_64 random{std::random_device{}()};
  std::lock_guard<std::mutex> lock(mu);
  return absl::StrFormat("%013x%06x", absl::ToUnixMicros(absl::Now()),
                         static_cast<uint32_t>(random() & 0xffffff));
}

v1::JobEvent NewEvent(const v1::Job& job) {
  v1::JobEvent event;
  event.set_job(job.name());
  *event.mutable_time() = Now();
  return event;
}

bool OnWorker(v1::JobState state) {
  return state == v1::JOB_STATE_ASSIGNED || state == v1::JOB_STATE_RUNNING ||
         state == v1::JOB_STATE_CANCELLING;
}

}  // namespace

JobManager::JobManager(JobStore* store, JobManagerOptions options, metrics::ServerMetrics& metrics)
    : store_(store),
      options_(std::move(options)),
      metrics_(metrics),
      scheduler_(options_.max_jobs_per_gpu),
      hub_(options_.event_window) {}

JobManager::~JobManager() { Stop(); }

absl::Status JobManager::Recover() {
  absl::StatusOr<std::vector<JobRecord>> unfinished = store_->ListUnfinishedJobs();
  if (!unfinished.ok()) return unfinished.status();
  std::lock_guard<std::mutex> lock(mu_);
  const absl::Time grace_until = absl::Now() + options_.lease_duration;
  for (JobRecord& record : *unfinished) {
    // Jobs stored before tenants existed belong to the default tenant (and its roots).
    if (record.job.tenant().empty()) record.job.set_tenant("default");
    const v1::Job& job = record.job;
    hub_.Open(job.job_id(), job.last_event_sequence());
    // Waiting since before the restart: counted from now, the best this process knows.
    clocks_[job.job_id()] = {absl::Now(), std::nullopt};
    if (job.has_start_time()) {
      clocks_[job.job_id()].first_placed =
          absl::FromUnixMicros(TimeUtil::TimestampToMicroseconds(job.start_time()));
    }
    if (OnWorker(job.state()) && !job.worker().empty()) {
      // The worker may still run it: wait for it to reconnect until a fresh lease expires.
      const std::string worker_id = job.worker().substr(job.worker().find('/') + 1);
      WorkerEntry& entry = workers_[worker_id];
      entry.info.set_name(job.worker());
      entry.info.set_worker_id(worker_id);
      entry.info.set_state(v1::WORKER_STATE_DISCONNECTED);
      entry.principal = job.worker_principal();
      entry.lease_expiry = grace_until;
      entry.jobs[job.job_id()] = job.gpu_index();
    }
    active_[job.job_id()] = std::move(record);
  }
  logging::Info(absl::StrCat("recovered ", active_.size(), " unfinished jobs and ", workers_.size(),
                             " workers to wait for"));
  dirty_ = true;
  return absl::OkStatus();
}

void JobManager::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (loop_.joinable()) return;
  stopping_ = false;
  accepting_ = true;
  loop_ = std::thread([this] { Loop(); });
}

void JobManager::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    accepting_ = false;
    for (auto& [id, entry] : workers_) {
      if (entry.outbox) entry.outbox->Close();
    }
  }
  wake_.notify_all();
  hub_.Shutdown();
  if (loop_.joinable()) loop_.join();
}

void JobManager::Wake() {
  dirty_ = true;
  wake_.notify_all();
}

void JobManager::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    wake_.wait_for(lock, std::chrono::milliseconds(100), [&] { return stopping_ || dirty_; });
    if (stopping_) break;
    ExpireLeasesLocked(absl::Now());
    FailUnplaceableLocked(absl::Now());
    if (dirty_) {
      dirty_ = false;
      ScheduleLocked();
    }
  }
}

absl::Status JobManager::CommitLocked(JobRecord& record, std::vector<v1::JobEvent> events) {
  absl::Status status = store_->UpdateJob(record, events);
  if (!status.ok()) {
    logging::Error(absl::StrCat("storing job ", record.job.job_id(), ": ", status.ToString()));
    return status;
  }
  hub_.Publish(record.job.job_id(), events);
  if (IsTerminal(record.job.state())) {
    hub_.Close(record.job.job_id());
    clocks_.erase(record.job.job_id());
    shapes_.erase(record.job.job_id());
    active_.erase(record.job.job_id());  // `record` may be the erased entry: do not touch it after.
  }
  return absl::OkStatus();
}

void JobManager::LogToJobLocked(JobRecord& record, const std::string& message,
                                const std::string& worker_id) {
  logging::Info(message, {record.job.job_id(), worker_id});
  v1::JobEvent event = NewEvent(record.job);
  event.mutable_log()->set_level(v1::LOG_LEVEL_INFO);
  event.mutable_log()->set_message("quantd: " + message);
  (void)CommitLocked(record, {std::move(event)});
}

absl::Status JobManager::TransitionLocked(JobRecord& record, v1::JobState state,
                                          const v1::JobError* error) {
  v1::Job& job = record.job;
  job.set_state(state);
  if (state != v1::JOB_STATE_QUEUED) {  // Why it waited no longer applies.
    job.clear_queue_reason();
    job.clear_queue_message();
    job.clear_queue_reason_time();
  }
  if (state == v1::JOB_STATE_RUNNING) *job.mutable_start_time() = Now();
  if (IsTerminal(state)) *job.mutable_end_time() = Now();
  if (error != nullptr && state == v1::JOB_STATE_FAILED) *job.mutable_error() = *error;
  v1::JobEvent event = NewEvent(job);
  v1::StateChange* change = event.mutable_state_change();
  change->set_state(state);
  change->set_attempt(job.attempt());
  change->set_worker(job.worker());
  if (error != nullptr) *change->mutable_error() = *error;
  // The worker field carries the bare id ("workers/w1" -> "w1"), as the worker's own lines do.
  const std::string worker_id =
      absl::StartsWith(job.worker(), "workers/") ? job.worker().substr(8) : job.worker();
  logging::Info(absl::StrCat("job -> ", v1::JobState_Name(state), " (attempt ", job.attempt(),
                             job.worker().empty() ? "" : absl::StrCat(", ", job.worker()), ")"),
                {job.job_id(), worker_id});
  const std::string job_id = job.job_id();  // `record` may be gone after a terminal commit.
  const std::optional<JobClock> clock =
      clocks_.count(job_id) ? std::optional<JobClock>(clocks_[job_id]) : std::nullopt;
  if (absl::Status s = CommitLocked(record, {std::move(event)}); !s.ok()) return s;
  ObserveTransitionLocked(job_id, state, clock);
  return absl::OkStatus();
}

// (1)
absl::StatusOr<v1::Job> JobManager::Submit(const v1::SubmitJobRequest& request,
                                           const SubmitContext& context) {
  if (!request.has_spec()) return absl::InvalidArgumentError("spec: required");
  if (request.request_id().size() > 128) {
    return absl::InvalidArgumentError("request_id: longer than 128 characters");
  }
  v1::JobSpec spec = request.spec();
  const PathPolicy paths{RootsForTenant(options_.paths.allowed_roots, context.tenant)};
  if (absl::Status s = ValidateAndFillSpec(paths, spec); !s.ok()) return s;
  absl::StatusOr<JobMemoryShape> shape = JobMemoryShapeOf(spec);
  if (!shape.ok()) return shape.status();

  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return absl::UnavailableError("quantd is shutting down");
  if (!request.request_id().empty()) {
    absl::StatusOr<JobRecord> existing = store_->FindByRequestId(request.request_id());
    if (existing.ok() && existing->job.tenant() != context.tenant) {
      return absl::AlreadyExistsError("request_id: already used (choose another)");
    }
    if (existing.ok()) {
      if (google::protobuf::util::MessageDifferencer::Equals(existing->job.spec(), spec)) {
        return existing->job;
      }
      return absl::AlreadyExistsError(absl::StrCat("request_id: \"", request.request_id(),
                                                   "\" was used for ", existing->job.name(),
                                                   " with a different spec"));
    }
    if (!absl::IsNotFound(existing.status())) return existing.status();
  }
  if (context.max_queued_jobs > 0) {
    int queued = 0;
    for (const auto& [id, active] : active_) {
      queued += active.job.state() == v1::JOB_STATE_QUEUED && active.job.tenant() == context.tenant;
    }
    if (queued >= context.max_queued_jobs) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "tenant ", context.tenant, " has ", queued,
          " queued jobs, the limit (quantd --max-queued-jobs-per-tenant=", context.max_queued_jobs,
          "); wait for some to start or cancel some"));
    }
  }
  JobRecord record;
  v1::Job& job = record.job;
  job.set_job_id(NewJobId());
  job.set_tenant(context.tenant);
  job.set_owner(context.owner);
  job.set_name(absl::StrCat("jobs/", job.job_id()));
  *job.mutable_spec() = std::move(spec);
  job.set_state(v1::JOB_STATE_QUEUED);
  job.set_attempt(1);
  job.set_gpu_index(-1);
  *job.mutable_create_time() = Now();
  job.set_request_id(request.request_id());
  // Resident: what the run would use with every calibration token on the GPU at once.
  job.set_estimated_gpu_memory_bytes(static_cast<int64_t>(
      memory_plan::PlanRun(shape->geometry, shape->blocks, shape->len, 1e18).planned_bytes));
  job.set_min_gpu_memory_bytes(
      memory_plan::SmallestGpuBytes(shape->geometry, shape->blocks, shape->len));
  v1::JobEvent event = NewEvent(job);
  event.mutable_state_change()->set_state(v1::JOB_STATE_QUEUED);
  event.mutable_state_change()->set_attempt(1);
  std::vector<v1::JobEvent> events = {std::move(event)};
  if (absl::Status s = store_->CreateJob(record, events); !s.ok()) return s;
  metrics_.jobs_submitted.Increment();
  hub_.Open(job.job_id(), job.last_event_sequence());
  active_[job.job_id()] = record;
  clocks_[job.job_id()] = {absl::Now(), std::nullopt};
  shapes_[job.job_id()] = *std::move(shape);
  logging::Info(
      absl::StrCat("job submitted: ", job.spec().model_dir(), " -> ", job.spec().output_dir()),
      {job.job_id(), ""});
  Wake();
  return record.job;
}

absl::StatusOr<v1::Job> JobManager::Get(const std::string& name) {
  absl::StatusOr<std::string> id = JobIdFromName(name);
  if (!id.ok()) return id.status();
  absl::StatusOr<JobRecord> record = store_->GetJob(*id);
  if (!record.ok()) return record.status();
  return record->job;
}

absl::StatusOr<v1::ListJobsResponse> JobManager::List(const v1::ListJobsRequest& request) {
  ListJobsQuery query;
  for (int state : request.states()) {
    if (!v1::JobState_IsValid(state) || state == v1::JOB_STATE_UNSPECIFIED) {
      return absl::InvalidArgumentError(absl::StrCat("states: ", state, " is not a JobState"));
    }
    query.states.push_back(static_cast<v1::JobState>(state));
  }
  query.labels.insert(request.labels().begin(), request.labels().end());
  query.tenant = request.tenant();
  if (request.page_size() < 0) return absl::InvalidArgumentError("page_size: negative");
  query.page_size = request.page_size();
  query.page_token = request.page_token();
  absl::StatusOr<JobPage> page = store_->ListJobs(query);
  if (!page.ok()) return page.status();
  v1::ListJobsResponse response;
  for (v1::Job& job : page->jobs) *response.add_jobs() = std::move(job);
  response.set_next_page_token(page->next_page_token);
  return response;
}

// (5), (8)
absl::StatusOr<v1::Job> JobManager::Cancel(const std::string& name) {
  absl::StatusOr<std::string> id = JobIdFromName(name);
  if (!id.ok()) return id.status();
  std::lock_guard<std::mutex> lock(mu_);
  auto it = active_.find(*id);
  if (it == active_.end()) {
    absl::StatusOr<JobRecord> stored = store_->GetJob(*id);
    if (!stored.ok()) return stored.status();
    if (stored->job.state() == v1::JOB_STATE_CANCELLED) return stored->job;
    return absl::FailedPreconditionError(absl::StrCat(
        name, " is ", v1::JobState_Name(stored->job.state()), " and can no longer be cancelled"));
  }
  JobRecord& record = it->second;
  switch (record.job.state()) {
    case v1::JOB_STATE_QUEUED: {
      JobRecord copy = record;
      if (absl::Status s = TransitionLocked(copy, v1::JOB_STATE_CANCELLED); !s.ok()) return s;
      return copy.job;
    }
    case v1::JOB_STATE_ASSIGNED:
    case v1::JOB_STATE_RUNNING: {
      if (absl::Status s = TransitionLocked(record, v1::JOB_STATE_CANCELLING); !s.ok()) return s;
      v1::ServerMessage message;
      message.mutable_cancel()->set_job_id(record.job.job_id());
      message.mutable_cancel()->set_attempt(record.job.attempt());
      SendLocked(record.job.worker().substr(8), std::move(message));
      return record.job;
    }
    default:
      return record.job;  // CANCELLING: already on its way.
  }
}

absl::Status JobManager::Watch(const std::string& name, int64_t after_sequence,
                               const std::function<bool(const v1::JobEvent&)>& write,
                               const std::function<bool()>& cancelled) {
  absl::StatusOr<std::string> id = JobIdFromName(name);
  if (!id.ok()) return id.status();
  if (after_sequence < 0) return absl::InvalidArgumentError("after_sequence: negative");
  metrics_.watchers.Increment();
  struct Leave {
    metrics::Gauge& watchers;
    ~Leave() { watchers.Decrement(); }
  } leave{metrics_.watchers};
  constexpr int kBatch = 256;
  int64_t last = after_sequence;
  std::vector<v1::JobEvent> batch;
  bool read_store = true;  // Replay first; afterwards only when the hub says so.
  while (true) {
    if (cancelled()) return absl::CancelledError("watcher went away");
    batch.clear();
    if (read_store) {
      absl::StatusOr<std::vector<v1::JobEvent>> stored = store_->ReadEvents(*id, last, kBatch);
      if (!stored.ok()) return stored.status();
      batch = std::move(*stored);
      read_store = static_cast<int>(batch.size()) == kBatch;
    }
    if (batch.empty() && !read_store) {
      switch (hub_.Wait(*id, last, kBatch, absl::Milliseconds(500), &batch)) {
        case JobEventHub::WaitResult::kEvents:
          break;
        case JobEventHub::WaitResult::kTimeout:
          continue;
        case JobEventHub::WaitResult::kBehind:
          read_store = true;
          continue;
        case JobEventHub::WaitResult::kNotOpen: {
          // Finished (its terminal event is in the store) or the server is stopping.
          {
            std::lock_guard<std::mutex> lock(mu_);
            if (stopping_) return absl::UnavailableError("quantd is shutting down");
          }
          read_store = true;
          absl::StatusOr<JobRecord> job = store_->GetJob(*id);
          if (!job.ok()) return job.status();
          if (job->job.last_event_sequence() <= last && IsTerminal(job->job.state())) {
            return absl::OkStatus();  // The client has seen everything, terminal event included.
          }
          if (job->job.last_event_sequence() <= last) {
            // Not tracked but unfinished: only while Submit publishes; poll the store.
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
          }
          continue;
        }
      }
    }
    for (const v1::JobEvent& event : batch) {
      if (event.sequence() != last + 1) continue;  // Never a gap or a duplicate.
      if (!write(event)) return absl::CancelledError("watcher went away");
      last = event.sequence();
      if (event.has_state_change() && IsTerminal(event.state_change().state())) {
        return absl::OkStatus();
      }
    }
  }
}

v1::ListWorkersResponse JobManager::ListWorkers() {
  std::lock_guard<std::mutex> lock(mu_);
  v1::ListWorkersResponse response;
  for (const auto& [id, entry] : workers_) {
    v1::Worker* worker = response.add_workers();
    *worker = entry.info;
    worker->clear_running_jobs();
    for (const auto& [job_id, gpu] : entry.jobs) worker->add_running_jobs("jobs/" + job_id);
  }
  return response;
}

}  // namespace quantd::server
