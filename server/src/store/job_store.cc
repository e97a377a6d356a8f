#include "store/job_store.h"

#include <filesystem>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/util/time_util.h"
#include "store/memory_job_store.h"
#include "store/sqlite_job_store.h"

namespace quantd::server {

bool IsTerminal(v1::JobState state) {
  return state == v1::JOB_STATE_SUCCEEDED || state == v1::JOB_STATE_FAILED ||
         state == v1::JOB_STATE_CANCELLED;
}

int64_t CreateMicros(const v1::Job& job) {
  return google::protobuf::util::TimeUtil::TimestampToMicroseconds(job.create_time());
}

bool MatchesQuery(const v1::Job& job, const ListJobsQuery& query) {
  if (!query.tenant.empty() && job.tenant() != query.tenant) return false;
  if (!query.states.empty()) {
    bool found = false;
    for (v1::JobState s : query.states) found = found || s == job.state();
    if (!found) return false;
  }
  for (const auto& [key, value] : query.labels) {
    auto it = job.spec().labels().find(key);
    if (it == job.spec().labels().end() || it->second != value) return false;
  }
  return true;
}

std::string EncodePageToken(int64_t create_micros, const std::string& job_id) {
  return absl::StrCat(create_micros, ":", job_id);
}

absl::Status DecodePageToken(const std::string& token, int64_t* create_micros,
                             std::string* job_id) {
  std::vector<std::string> parts = absl::StrSplit(token, absl::MaxSplits(':', 1));
  if (parts.size() != 2 || parts[1].empty() || !absl::SimpleAtoi(parts[0], create_micros)) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_token: \"", token, "\" is not a token returned by ListJobs"));
  }
  *job_id = parts[1];
  return absl::OkStatus();
}

int EffectivePageSize(int page_size) {
  if (page_size <= 0) return 50;
  return page_size > 1000 ? 1000 : page_size;
}

absl::StatusOr<std::unique_ptr<JobStore>> OpenJobStore(StoreBackend backend,
                                                       const std::string& sqlite_path) {
  if (backend == StoreBackend::kMemory) return std::make_unique<MemoryJobStore>();
  return SqliteJobStore::Open(sqlite_path);
}

}  // namespace quantd::server
