#include "store/memory_job_store.h"

#include "absl/strings/str_cat.h"

namespace quantd::server {

void MemoryJobStore::Append(Entry& entry, JobRecord& record, std::vector<v1::JobEvent>& events) {
  int64_t sequence = static_cast<int64_t>(entry.events.size());
  for (v1::JobEvent& event : events) {
    event.set_sequence(++sequence);
    entry.events.push_back(event);
  }
  record.job.set_last_event_sequence(sequence);
  entry.record = record;
}

absl::Status MemoryJobStore::CreateJob(JobRecord& record, std::vector<v1::JobEvent>& events) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string& id = record.job.job_id();
  if (jobs_.count(id)) return absl::AlreadyExistsError(absl::StrCat("job ", id, " exists"));
  const std::string& request_id = record.job.request_id();
  if (!request_id.empty() && by_request_id_.count(request_id)) {
    return absl::AlreadyExistsError(absl::StrCat("request_id ", request_id, " is taken"));
  }
  Entry& entry = jobs_[id];
  Append(entry, record, events);
  if (!request_id.empty()) by_request_id_[request_id] = id;
  by_time_[{CreateMicros(record.job), id}] = id;
  return absl::OkStatus();
}

absl::StatusOr<JobRecord> MemoryJobStore::GetJob(const std::string& job_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return absl::NotFoundError(absl::StrCat("job ", job_id, " not found"));
  return it->second.record;
}

absl::StatusOr<JobRecord> MemoryJobStore::FindByRequestId(const std::string& request_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_request_id_.find(request_id);
  if (it == by_request_id_.end()) {
    return absl::NotFoundError(absl::StrCat("no job with request_id ", request_id));
  }
  return jobs_.at(it->second).record;
}

absl::Status MemoryJobStore::UpdateJob(JobRecord& record, std::vector<v1::JobEvent>& events) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(record.job.job_id());
  if (it == jobs_.end()) {
    return absl::NotFoundError(absl::StrCat("job ", record.job.job_id(), " not found"));
  }
  Append(it->second, record, events);
  return absl::OkStatus();
}

absl::StatusOr<JobPage> MemoryJobStore::ListJobs(const ListJobsQuery& query) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_time_.begin();
  if (!query.page_token.empty()) {
    std::pair<int64_t, std::string> after;
    absl::Status status = DecodePageToken(query.page_token, &after.first, &after.second);
    if (!status.ok()) return status;
    it = by_time_.upper_bound(after);
  }
  JobPage page;
  const size_t page_size = EffectivePageSize(query.page_size);
  for (; it != by_time_.end(); ++it) {
    const v1::Job& job = jobs_.at(it->second).record.job;
    if (!MatchesQuery(job, query)) continue;
    if (page.jobs.size() == page_size) {
      const v1::Job& last = page.jobs.back();
      page.next_page_token = EncodePageToken(CreateMicros(last), last.job_id());
      break;
    }
    page.jobs.push_back(job);
  }
  return page;
}

absl::StatusOr<std::vector<v1::JobEvent>> MemoryJobStore::ReadEvents(const std::string& job_id,
                                                                     int64_t after_sequence,
                                                                     int limit) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return absl::NotFoundError(absl::StrCat("job ", job_id, " not found"));
  const std::vector<v1::JobEvent>& all = it->second.events;
  std::vector<v1::JobEvent> out;
  for (int64_t i = after_sequence < 0 ? 0 : after_sequence;
       i < static_cast<int64_t>(all.size()) && static_cast<int>(out.size()) < limit; ++i) {
    out.push_back(all[i]);
  }
  return out;
}

absl::StatusOr<std::vector<JobRecord>> MemoryJobStore::ListUnfinishedJobs() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<JobRecord> out;
  for (auto it = by_time_.rbegin(); it != by_time_.rend(); ++it) {
    const JobRecord& record = jobs_.at(it->second).record;
    if (!IsTerminal(record.job.state())) out.push_back(record);
  }
  return out;
}

}  // namespace quantd::server
