#include "store/instrumented_job_store.h"

#include <chrono>

namespace quantd::server {
namespace {

// Errors that say the store itself is broken, as opposed to answers about the data (NOT_FOUND,
// ALREADY_EXISTS, a bad page token).
bool IsStoreFailure(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDataLoss:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kUnknown:
      return true;
    default:
      return false;
  }
}

const absl::Status& StatusOf(const absl::Status& status) { return status; }
template <typename T>
const absl::Status& StatusOf(const absl::StatusOr<T>& result) {
  return result.status();
}

}  // namespace

InstrumentedJobStore::InstrumentedJobStore(std::unique_ptr<JobStore> store,
                                           metrics::ServerMetrics& metrics,
                                           std::function<void(bool healthy)> on_health_change)
    : store_(std::move(store)), on_health_change_(std::move(on_health_change)) {
  // Names as in docs/metrics.md; children looked up once, so an operation costs two atomics.
  static constexpr const char* kNames[kOperationCount] = {
      "create_job", "get_job",     "find_by_request_id",  "update_job",
      "list_jobs",  "read_events", "list_unfinished_jobs"};
  for (int op = 0; op < kOperationCount; ++op) {
    latency_[op] = *metrics.store_operation_duration_seconds.Add({{"operation", kNames[op]}});
  }
}

absl::Status InstrumentedJobStore::Health() const {
  std::lock_guard<std::mutex> lock(mu_);
  return health_;
}

void InstrumentedJobStore::Record(const absl::Status& status) {
  const bool failed = IsStoreFailure(status);
  if (!failed && !status.ok()) return;  // An answer about the data says nothing about health.
  bool changed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    changed = health_.ok() == failed;
    health_ = failed ? status : absl::OkStatus();
  }
  if (changed && on_health_change_) on_health_change_(!failed);
}

template <typename Call>
auto InstrumentedJobStore::Timed(Operation operation, Call&& call) {
  const auto start = std::chrono::steady_clock::now();
  auto result = call();
  latency_[operation]->Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  Record(StatusOf(result));
  return result;
}

absl::Status InstrumentedJobStore::CreateJob(JobRecord& record, std::vector<v1::JobEvent>& events) {
  return Timed(kCreateJob, [&] { return store_->CreateJob(record, events); });
}

absl::StatusOr<JobRecord> InstrumentedJobStore::GetJob(const std::string& job_id) {
  return Timed(kGetJob, [&] { return store_->GetJob(job_id); });
}

absl::StatusOr<JobRecord> InstrumentedJobStore::FindByRequestId(const std::string& request_id) {
  return Timed(kFindByRequestId, [&] { return store_->FindByRequestId(request_id); });
}

absl::Status InstrumentedJobStore::UpdateJob(JobRecord& record, std::vector<v1::JobEvent>& events) {
  return Timed(kUpdateJob, [&] { return store_->UpdateJob(record, events); });
}

absl::StatusOr<JobPage> InstrumentedJobStore::ListJobs(const ListJobsQuery& query) {
  return Timed(kListJobs, [&] { return store_->ListJobs(query); });
}

absl::StatusOr<std::vector<v1::JobEvent>> InstrumentedJobStore::ReadEvents(
    const std::string& job_id, int64_t after_sequence, int limit) {
  return Timed(kReadEvents, [&] { return store_->ReadEvents(job_id, after_sequence, limit); });
}

absl::StatusOr<std::vector<JobRecord>> InstrumentedJobStore::ListUnfinishedJobs() {
  return Timed(kListUnfinishedJobs, [&] { return store_->ListUnfinishedJobs(); });
}

}  // namespace quantd::server
