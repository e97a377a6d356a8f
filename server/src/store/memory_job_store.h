// MemoryJobStore: a JobStore that lives and dies with the process (tests, throwaway servers).
#ifndef QUANTD_SERVER_STORE_MEMORY_JOB_STORE_H_
#define QUANTD_SERVER_STORE_MEMORY_JOB_STORE_H_

#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "store/job_store.h"

namespace quantd::server {

class MemoryJobStore final : public JobStore {
 public:
  absl::Status CreateJob(JobRecord& record, std::vector<v1::JobEvent>& events) override;
  absl::StatusOr<JobRecord> GetJob(const std::string& job_id) override;
  absl::StatusOr<JobRecord> FindByRequestId(const std::string& request_id) override;
  absl::Status UpdateJob(JobRecord& record, std::vector<v1::JobEvent>& events) override;
  absl::StatusOr<JobPage> ListJobs(const ListJobsQuery& query) override;
  absl::StatusOr<std::vector<v1::JobEvent>> ReadEvents(const std::string& job_id,
                                                       int64_t after_sequence, int limit) override;
  absl::StatusOr<std::vector<JobRecord>> ListUnfinishedJobs() override;

 private:
  struct Entry {
    JobRecord record;
    std::vector<v1::JobEvent> events;  // events[i].sequence == i + 1
  };
  // Numbers the events after the entry's last one and appends them.
  static void Append(Entry& entry, JobRecord& record, std::vector<v1::JobEvent>& events);

  std::mutex mu_;
  std::map<std::string, Entry> jobs_;
  std::map<std::string, std::string> by_request_id_;
  // Ordering key (create micros, job id) of every job, for newest-first listing.
  std::map<std::pair<int64_t, std::string>, std::string, std::greater<>> by_time_;
};

}  // namespace quantd::server

#endif  // QUANTD_SERVER_STORE_MEMORY_JOB_STORE_H_
