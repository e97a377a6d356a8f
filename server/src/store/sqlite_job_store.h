// SqliteJobStore: the default JobStore, an embedded SQLite database in WAL mode with
// synchronous=FULL, so a job acknowledged to a client survives kill -9 and power loss.
//
// Schema versions live in PRAGMA user_version; Open() applies the migrations the file lacks, in
// order, each in its own transaction, and refuses a file written by a newer quantd.
#ifndef QUANTD_SERVER_STORE_SQLITE_JOB_STORE_H_
#define QUANTD_SERVER_STORE_SQLITE_JOB_STORE_H_

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "store/job_store.h"

struct sqlite3;

namespace quantd::server {

class SqliteJobStore final : public JobStore {
 public:
  // The schema version this build writes.
  static constexpr int kSchemaVersion = 2;

  // Opens (creating if needed) the database at `path`.
  static absl::StatusOr<std::unique_ptr<SqliteJobStore>> Open(const std::string& path);
  ~SqliteJobStore() override;

  absl::Status CreateJob(JobRecord& record, std::vector<v1::JobEvent>& events) override;
  absl::StatusOr<JobRecord> GetJob(const std::string& job_id) override;
  absl::StatusOr<JobRecord> FindByRequestId(const std::string& request_id) override;
  absl::Status UpdateJob(JobRecord& record, std::vector<v1::JobEvent>& events) override;
  absl::StatusOr<JobPage> ListJobs(const ListJobsQuery& query) override;
  absl::StatusOr<std::vector<v1::JobEvent>> ReadEvents(const std::string& job_id,
                                                       int64_t after_sequence, int limit) override;
  absl::StatusOr<std::vector<JobRecord>> ListUnfinishedJobs() override;

 private:
  SqliteJobStore(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  absl::Status Migrate();
  absl::Status Exec(const std::string& sql);
  absl::Status Error(const std::string& what);
  absl::StatusOr<std::vector<JobRecord>> QueryRecords(const std::string& sql,
                                                      const std::vector<std::string>& args);
  absl::Status WriteJob(JobRecord& record, std::vector<v1::JobEvent>& events, int64_t last_sequence,
                        bool insert);

  std::mutex mu_;  // One connection, used by one thread at a time.
  sqlite3* db_;
  std::string path_;
};

}  // namespace quantd::server

#endif  // QUANTD_SERVER_STORE_SQLITE_JOB_STORE_H_
