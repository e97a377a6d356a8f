#include "store/sqlite_job_store.h"

#include <sqlite3.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace quantd::server {
namespace {

// Migration i (1-based) takes the schema from version i-1 to i. Append; never edit a shipped one.
const char* const kMigrations[] = {
    // 1: jobs (the Job message plus columns to query on), their labels and their events.
    R"sql(
    CREATE TABLE jobs (
      job_id TEXT PRIMARY KEY,
      request_id TEXT UNIQUE,           -- NULL when the client gave none
      state INTEGER NOT NULL,
      create_micros INTEGER NOT NULL,
      last_sequence INTEGER NOT NULL,
      last_report_number INTEGER NOT NULL,
      job BLOB NOT NULL                 -- serialized quantd.v1.Job
    );
    CREATE INDEX jobs_by_time ON jobs (create_micros DESC, job_id DESC);
    CREATE INDEX jobs_by_state ON jobs (state);
    CREATE TABLE job_labels (
      job_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
      PRIMARY KEY (job_id, key)
    ) WITHOUT ROWID;
    CREATE TABLE events (
      job_id TEXT NOT NULL,
      sequence INTEGER NOT NULL,
      event BLOB NOT NULL,              -- serialized quantd.v1.JobEvent
      PRIMARY KEY (job_id, sequence)
    ) WITHOUT ROWID;
    )sql",
    // 2: the job's tenant as a column, for ListJobs restricted to one tenant.
    R"sql(
    ALTER TABLE jobs ADD COLUMN tenant TEXT NOT NULL DEFAULT '';
    CREATE INDEX jobs_by_tenant ON jobs (tenant, create_micros DESC, job_id DESC);
    )sql",
};
static_assert(sizeof(kMigrations) / sizeof(kMigrations[0]) == SqliteJobStore::kSchemaVersion);

// A prepared statement that finalizes itself.
class Statement {
 public:
  Statement(sqlite3* db, const std::string& sql) {
    rc_ = sqlite3_prepare_v2(db, sql.c_str(), static_cast<int>(sql.size()), &stmt_, nullptr);
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  bool ok() const { return rc_ == SQLITE_OK; }
  void Bind(int i, const std::string& s) {
    sqlite3_bind_text(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  }
  void BindBlob(int i, const std::string& s) {
    sqlite3_bind_blob(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  }
  void Bind(int i, int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
  void BindNull(int i) { sqlite3_bind_null(stmt_, i); }
  int Step() { return sqlite3_step(stmt_); }
  std::string Blob(int col) {
    const void* p = sqlite3_column_blob(stmt_, col);
    return p ? std::string(static_cast<const char*>(p), sqlite3_column_bytes(stmt_, col))
             : std::string();
  }
  int64_t Int(int col) { return sqlite3_column_int64(stmt_, col); }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
};

// Rolls back unless committed.
class Transaction {
 public:
  explicit Transaction(sqlite3* db) : db_(db) {
    ok_ = sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK;
  }
  ~Transaction() {
    if (ok_ && !done_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  bool ok() const { return ok_; }
  bool Commit() {
    done_ = true;
    return sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) == SQLITE_OK;
  }

 private:
  sqlite3* db_;
  bool ok_ = false;
  bool done_ = false;
};

}  // namespace

absl::StatusOr<std::unique_ptr<SqliteJobStore>> SqliteJobStore::Open(const std::string& path) {
  std::error_code ec;
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("job store: cannot create directory ", parent.string(), ": ", ec.message()));
  }
  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return absl::FailedPreconditionError(
        absl::StrCat("job store: cannot open ", path, ": ", message));
  }
  std::unique_ptr<SqliteJobStore> store(new SqliteJobStore(db, path));
  sqlite3_busy_timeout(db, 5000);
  for (const char* pragma :
       {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON"}) {
    if (absl::Status s = store->Exec(pragma); !s.ok()) return s;
  }
  if (absl::Status s = store->Migrate(); !s.ok()) return s;
  return store;
}

SqliteJobStore::~SqliteJobStore() { sqlite3_close(db_); }

absl::Status SqliteJobStore::Error(const std::string& what) {
  return absl::InternalError(
      absl::StrCat("job store ", path_, ": ", what, ": ", sqlite3_errmsg(db_)));
}

absl::Status SqliteJobStore::Exec(const std::string& sql) {
  char* error = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
    std::string message = error ? error : "unknown error";
    sqlite3_free(error);
    return absl::InternalError(absl::StrCat("job store ", path_, ": ", message));
  }
  return absl::OkStatus();
}

absl::Status SqliteJobStore::Migrate() {
  Statement get(db_, "PRAGMA user_version");
  if (!get.ok() || get.Step() != SQLITE_ROW) return Error("reading the schema version");
  const int64_t version = get.Int(0);
  if (version > kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "job store ", path_, ": schema version ", version, " was written by a newer quantd (this ",
        "one knows up to ", kSchemaVersion, "); upgrade quantd or use another --store-path"));
  }
  for (int64_t v = version + 1; v <= kSchemaVersion; ++v) {
    Transaction tx(db_);
    if (!tx.ok()) return Error("starting a migration");
    if (absl::Status s = Exec(kMigrations[v - 1]); !s.ok()) return s;
    if (absl::Status s = Exec(absl::StrCat("PRAGMA user_version = ", v)); !s.ok()) return s;
    if (!tx.Commit()) return Error(absl::StrCat("committing migration ", v));
  }
  return absl::OkStatus();
}

absl::Status SqliteJobStore::WriteJob(JobRecord& record, std::vector<v1::JobEvent>& events,
                                      int64_t last_sequence, bool insert) {
  const v1::Job& job = record.job;
  for (v1::JobEvent& event : events) {
    event.set_sequence(++last_sequence);
    Statement add(db_, "INSERT INTO events (job_id, sequence, event) VALUES (?, ?, ?)");
    add.Bind(1, job.job_id());
    add.Bind(2, last_sequence);
    add.BindBlob(3, event.SerializeAsString());
    if (add.Step() != SQLITE_DONE) return Error("appending an event");
  }
  record.job.set_last_event_sequence(last_sequence);
  Statement put(db_, insert ? "INSERT INTO jobs (job_id, request_id, state, create_micros, "
                              "last_sequence, last_report_number, job, tenant) "
                              "VALUES (?,?,?,?,?,?,?,?)"
                            : "UPDATE jobs SET request_id = ?2, state = ?3, create_micros = ?4, "
                              "last_sequence = ?5, last_report_number = ?6, job = ?7, "
                              "tenant = ?8 WHERE job_id = ?1");
  put.Bind(1, job.job_id());
  if (job.request_id().empty()) {
    put.BindNull(2);
  } else {
    put.Bind(2, job.request_id());
  }
  put.Bind(3, static_cast<int64_t>(job.state()));
  put.Bind(4, CreateMicros(job));
  put.Bind(5, last_sequence);
  put.Bind(6, record.last_report_number);
  put.BindBlob(7, job.SerializeAsString());
  put.Bind(8, job.tenant());
  if (put.Step() != SQLITE_DONE) return Error("writing a job");
  if (insert) {
    for (const auto& [key, value] : job.spec().labels()) {
      Statement label(db_, "INSERT INTO job_labels (job_id, key, value) VALUES (?, ?, ?)");
      label.Bind(1, job.job_id());
      label.Bind(2, key);
      label.Bind(3, value);
      if (label.Step() != SQLITE_DONE) return Error("writing a label");
    }
  }
  return absl::OkStatus();
}

absl::Status SqliteJobStore::CreateJob(JobRecord& record, std::vector<v1::JobEvent>& events) {
  std::lock_guard<std::mutex> lock(mu_);
  Transaction tx(db_);
  if (!tx.ok()) return Error("starting a transaction");
  Statement taken(db_, "SELECT 1 FROM jobs WHERE job_id = ? OR request_id = ?");
  taken.Bind(1, record.job.job_id());
  if (record.job.request_id().empty()) {
    taken.BindNull(2);
  } else {
    taken.Bind(2, record.job.request_id());
  }
  if (taken.Step() == SQLITE_ROW) {
    return absl::AlreadyExistsError(absl::StrCat("job ", record.job.job_id(), " or request_id \"",
                                                 record.job.request_id(), "\" exists"));
  }
  std::vector<v1::JobEvent> numbered = events;
  JobRecord copy = record;
  if (absl::Status s = WriteJob(copy, numbered, 0, /*insert=*/true); !s.ok()) return s;
  if (!tx.Commit()) return Error("committing a new job");
  record = std::move(copy);
  events = std::move(numbered);
  return absl::OkStatus();
}

absl::Status SqliteJobStore::UpdateJob(JobRecord& record, std::vector<v1::JobEvent>& events) {
  std::lock_guard<std::mutex> lock(mu_);
  Transaction tx(db_);
  if (!tx.ok()) return Error("starting a transaction");
  Statement last(db_, "SELECT last_sequence FROM jobs WHERE job_id = ?");
  last.Bind(1, record.job.job_id());
  if (last.Step() != SQLITE_ROW) {
    return absl::NotFoundError(absl::StrCat("job ", record.job.job_id(), " not found"));
  }
  std::vector<v1::JobEvent> numbered = events;
  JobRecord copy = record;
  if (absl::Status s = WriteJob(copy, numbered, last.Int(0), /*insert=*/false); !s.ok()) return s;
  if (!tx.Commit()) return Error("committing a job update");
  record = std::move(copy);
  events = std::move(numbered);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<JobRecord>> SqliteJobStore::QueryRecords(
    const std::string& sql, const std::vector<std::string>& args) {
  Statement query(db_, sql);
  if (!query.ok()) return Error("preparing a query");
  for (size_t i = 0; i < args.size(); ++i) query.Bind(static_cast<int>(i + 1), args[i]);
  std::vector<JobRecord> out;
  int rc;
  while ((rc = query.Step()) == SQLITE_ROW) {
    JobRecord record;
    if (!record.job.ParseFromString(query.Blob(0))) {
      return absl::DataLossError(absl::StrCat("job store ", path_, ": unreadable job row"));
    }
    record.last_report_number = query.Int(1);
    out.push_back(std::move(record));
  }
  if (rc != SQLITE_DONE) return Error("reading jobs");
  return out;
}

absl::StatusOr<JobRecord> SqliteJobStore::GetJob(const std::string& job_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto rows = QueryRecords("SELECT job, last_report_number FROM jobs WHERE job_id = ?", {job_id});
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return absl::NotFoundError(absl::StrCat("job ", job_id, " not found"));
  return std::move(rows->front());
}

absl::StatusOr<JobRecord> SqliteJobStore::FindByRequestId(const std::string& request_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto rows =
      QueryRecords("SELECT job, last_report_number FROM jobs WHERE request_id = ?", {request_id});
  if (!rows.ok()) return rows.status();
  if (rows->empty())
    return absl::NotFoundError(absl::StrCat("no job with request_id ", request_id));
  return std::move(rows->front());
}

absl::StatusOr<JobPage> SqliteJobStore::ListJobs(const ListJobsQuery& query) {
  std::string sql = "SELECT job, last_report_number FROM jobs WHERE 1";
  std::vector<std::string> args;
  if (!query.states.empty()) {
    std::vector<std::string> states;
    for (v1::JobState s : query.states) states.push_back(absl::StrCat(static_cast<int>(s)));
    absl::StrAppend(&sql, " AND state IN (", absl::StrJoin(states, ","), ")");
  }
  if (!query.tenant.empty()) {
    absl::StrAppend(&sql, " AND tenant = ?");
    args.push_back(query.tenant);
  }
  for (const auto& [key, value] : query.labels) {
    absl::StrAppend(&sql, " AND EXISTS (SELECT 1 FROM job_labels l WHERE l.job_id = jobs.job_id",
                    " AND l.key = ? AND l.value = ?)");
    args.push_back(key);
    args.push_back(value);
  }
  if (!query.page_token.empty()) {
    int64_t micros;
    std::string job_id;
    if (absl::Status s = DecodePageToken(query.page_token, &micros, &job_id); !s.ok()) return s;
    absl::StrAppend(&sql, " AND (create_micros < ", micros, " OR (create_micros = ", micros,
                    " AND job_id < ?))");
    args.push_back(job_id);
  }
  const int page_size = EffectivePageSize(query.page_size);
  absl::StrAppend(&sql, " ORDER BY create_micros DESC, job_id DESC LIMIT ", page_size + 1);
  std::lock_guard<std::mutex> lock(mu_);
  auto rows = QueryRecords(sql, args);
  if (!rows.ok()) return rows.status();
  JobPage page;
  for (JobRecord& record : *rows) page.jobs.push_back(std::move(record.job));
  if (static_cast<int>(page.jobs.size()) > page_size) {
    page.jobs.pop_back();
    page.next_page_token =
        EncodePageToken(CreateMicros(page.jobs.back()), page.jobs.back().job_id());
  }
  return page;
}

absl::StatusOr<std::vector<v1::JobEvent>> SqliteJobStore::ReadEvents(const std::string& job_id,
                                                                     int64_t after_sequence,
                                                                     int limit) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement exists(db_, "SELECT 1 FROM jobs WHERE job_id = ?");
  exists.Bind(1, job_id);
  if (exists.Step() != SQLITE_ROW) {
    return absl::NotFoundError(absl::StrCat("job ", job_id, " not found"));
  }
  Statement read(db_,
                 "SELECT event FROM events WHERE job_id = ? AND sequence > ? "
                 "ORDER BY sequence LIMIT ?");
  read.Bind(1, job_id);
  read.Bind(2, after_sequence);
  read.Bind(3, static_cast<int64_t>(limit));
  std::vector<v1::JobEvent> out;
  int rc;
  while ((rc = read.Step()) == SQLITE_ROW) {
    v1::JobEvent event;
    if (!event.ParseFromString(read.Blob(0))) {
      return absl::DataLossError(
          absl::StrCat("job store ", path_, ": unreadable event of ", job_id));
    }
    out.push_back(std::move(event));
  }
  if (rc != SQLITE_DONE) return Error("reading events");
  return out;
}

absl::StatusOr<std::vector<JobRecord>> SqliteJobStore::ListUnfinishedJobs() {
  std::lock_guard<std::mutex> lock(mu_);
  return QueryRecords(
      absl::StrCat("SELECT job, last_report_number FROM jobs WHERE state NOT IN (",
                   static_cast<int>(v1::JOB_STATE_SUCCEEDED), ",",
                   static_cast<int>(v1::JOB_STATE_FAILED), ",",
                   static_cast<int>(v1::JOB_STATE_CANCELLED), ") ORDER BY create_micros, job_id"),
      {});
}

}  // namespace quantd::server
