// SQLite runs the shared JobStore contract, and what only a durable store must do: keep everything
// across a reopen, and refuse a database written by a newer schema.
#include "store/sqlite_job_store.h"

#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>

#include "job_store_conformance.h"

namespace quantd::server {
namespace {

std::string TempDbPath() {
  static int counter = 0;
  const auto dir =
      std::filesystem::temp_directory_path() /
      ("quantd-store-test-" + std::to_string(getpid()) + "-" + std::to_string(counter++));
  std::filesystem::remove_all(dir);
  return (dir / "state" / "quantd.db").string();  // The directory is created by Open().
}

INSTANTIATE_TEST_SUITE_P(Sqlite, JobStoreConformance, ::testing::Values([] {
                           auto store = SqliteJobStore::Open(TempDbPath());
                           EXPECT_TRUE(store.ok()) << store.status();
                           return std::unique_ptr<JobStore>(std::move(*store));
                         }));

TEST(SqliteJobStoreTest, EverythingSurvivesAReopenAndSequencesContinue) {
  const std::string path = TempDbPath();
  {
    auto store = SqliteJobStore::Open(path);
    ASSERT_TRUE(store.ok()) << store.status();
    JobRecord record;
    record.job.set_job_id("a");
    record.job.set_request_id("req");
    std::vector<v1::JobEvent> events(3);
    ASSERT_TRUE((*store)->CreateJob(record, events).ok());
  }
  auto store = SqliteJobStore::Open(path);
  ASSERT_TRUE(store.ok());
  auto found = (*store)->FindByRequestId("req");
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->job.last_event_sequence(), 3);
  std::vector<v1::JobEvent> more(2);
  ASSERT_TRUE((*store)->UpdateJob(*found, more).ok());
  EXPECT_EQ(more[0].sequence(), 4);
  auto all = (*store)->ReadEvents("a", 0, 100);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 5u);
}

TEST(SqliteJobStoreTest, UsesWalAndRecordsTheSchemaVersion) {
  const std::string path = TempDbPath();
  ASSERT_TRUE(SqliteJobStore::Open(path).ok());
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  auto scalar = [&](const char* sql) {
    sqlite3_stmt* stmt = nullptr;
    sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr);
    sqlite3_step(stmt);
    std::string value = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    sqlite3_finalize(stmt);
    return value;
  };
  EXPECT_EQ(scalar("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(scalar("PRAGMA user_version"), std::to_string(SqliteJobStore::kSchemaVersion));
  sqlite3_close(db);
}

TEST(SqliteJobStoreTest, RefusesADatabaseFromANewerQuantd) {
  const std::string path = TempDbPath();
  ASSERT_TRUE(SqliteJobStore::Open(path).ok());
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version = 99", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto store = SqliteJobStore::Open(path);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(store.status().message().find("schema version 99"), std::string::npos);
}

TEST(SqliteJobStoreTest, UnopenablePathNamesThePath) {
  auto store = SqliteJobStore::Open("/proc/quantd-cannot-be-here/x.db");
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("/proc/quantd-cannot-be-here"), std::string::npos);
}

}  // namespace
}  // namespace quantd::server
