// JobStore: durable storage of jobs and their event logs. The JobManager is its only writer.
//
// Two backends share one contract (tests/server/job_store_conformance.h runs against both):
// SqliteJobStore (the default; survives crashes) and MemoryJobStore (tests, throwaway servers).
// Backends are thread-safe; every method is atomic.
#ifndef QUANTD_SERVER_STORE_JOB_STORE_H_
#define QUANTD_SERVER_STORE_JOB_STORE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "quantd/v1/job.pb.h"

namespace quantd::server {

// A job as stored: the API resource plus bookkeeping that the API does not show.
struct JobRecord {
  v1::Job job;
  // Highest JobReport.report_number stored for job.attempt (0: none). Reset when the job is
  // requeued; lets a report resent after a reconnect be recognised and dropped.
  int64_t last_report_number = 0;
};

struct ListJobsQuery {
  std::vector<v1::JobState> states;           // Empty: every state.
  std::map<std::string, std::string> labels;  // Jobs carrying all of these.
  std::string tenant;                         // "": every tenant.
  int page_size = 50;                         // 1..1000.
  std::string page_token;                     // From a previous JobPage; "" = first page.
};

struct JobPage {
  std::vector<v1::Job> jobs;    // Newest first (create_time, then job_id, descending).
  std::string next_page_token;  // "" when there is nothing more.
};

class JobStore {
 public:
  virtual ~JobStore() = default;

  // Stores a new job and its first events. The events get sequence numbers 1, 2, ... and
  // record.job.last_event_sequence is set to the last. ALREADY_EXISTS when the job id, or a
  // non-empty record.job.request_id, is taken. Durable when it returns OK.
  virtual absl::Status CreateJob(JobRecord& record, std::vector<v1::JobEvent>& events) = 0;

  // NOT_FOUND when no job has this id.
  virtual absl::StatusOr<JobRecord> GetJob(const std::string& job_id) = 0;

  // The job submitted with this request_id; NOT_FOUND when none.
  virtual absl::StatusOr<JobRecord> FindByRequestId(const std::string& request_id) = 0;

  // Replaces the stored job and appends `events` in one transaction. Events get the next sequence
  // numbers after the stored job's last_event_sequence (whatever `record` says), and
  // record.job.last_event_sequence is set to the last one. NOT_FOUND for an unknown job.
  virtual absl::Status UpdateJob(JobRecord& record, std::vector<v1::JobEvent>& events) = 0;

  // A page of jobs; INVALID_ARGUMENT for a malformed page_token.
  virtual absl::StatusOr<JobPage> ListJobs(const ListJobsQuery& query) = 0;

  // Up to `limit` events of a job with sequence > after_sequence, in order. NOT_FOUND for an
  // unknown job.
  virtual absl::StatusOr<std::vector<v1::JobEvent>> ReadEvents(const std::string& job_id,
                                                               int64_t after_sequence,
                                                               int limit) = 0;

  // Every job not in a terminal state (for recovery at start-up), oldest first.
  virtual absl::StatusOr<std::vector<JobRecord>> ListUnfinishedJobs() = 0;
};

enum class StoreBackend { kSqlite, kMemory };

// Opens a backend. `sqlite_path` is used by kSqlite only (created with its directory if missing).
absl::StatusOr<std::unique_ptr<JobStore>> OpenJobStore(StoreBackend backend,
                                                       const std::string& sqlite_path);

// Helpers shared by the backends.
bool IsTerminal(v1::JobState state);
// Microseconds since the epoch of job.create_time (ordering key of ListJobs).
int64_t CreateMicros(const v1::Job& job);
// True when `job` passes the state and label filters of `query`.
bool MatchesQuery(const v1::Job& job, const ListJobsQuery& query);
// Page tokens encode the ordering key of the last job returned.
std::string EncodePageToken(int64_t create_micros, const std::string& job_id);
absl::Status DecodePageToken(const std::string& token, int64_t* create_micros, std::string* job_id);
// Clamps page_size to 1..1000 (0 or negative: 50).
int EffectivePageSize(int page_size);

}  // namespace quantd::server

#endif  // QUANTD_SERVER_STORE_JOB_STORE_H_
