// InstrumentedJobStore: every operation is timed under its name, answers about the data pass
// through unchanged, and a store that fails like a broken one turns Health() (and so readiness)
// off until it works again.
#include "store/instrumented_job_store.h"

#include <gtest/gtest.h>

#include "store/memory_job_store.h"

namespace quantd::server {
namespace {

// A MemoryJobStore whose GetJob fails with `failure` while it is set, as SQLite does on I/O
// errors.
class FlakyStore : public JobStore {
 public:
  absl::Status CreateJob(JobRecord& r, std::vector<v1::JobEvent>& e) override {
    return memory_.CreateJob(r, e);
  }
  absl::StatusOr<JobRecord> GetJob(const std::string& job_id) override {
    if (!failure.ok()) return failure;
    return memory_.GetJob(job_id);
  }
  absl::StatusOr<JobRecord> FindByRequestId(const std::string& id) override {
    return memory_.FindByRequestId(id);
  }
  absl::Status UpdateJob(JobRecord& r, std::vector<v1::JobEvent>& e) override {
    return memory_.UpdateJob(r, e);
  }
  absl::StatusOr<JobPage> ListJobs(const ListJobsQuery& q) override { return memory_.ListJobs(q); }
  absl::StatusOr<std::vector<v1::JobEvent>> ReadEvents(const std::string& id, int64_t after,
                                                       int limit) override {
    return memory_.ReadEvents(id, after, limit);
  }
  absl::StatusOr<std::vector<JobRecord>> ListUnfinishedJobs() override {
    return memory_.ListUnfinishedJobs();
  }
  absl::Status failure;

 private:
  MemoryJobStore memory_;
};

class InstrumentedJobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto flaky = std::make_unique<FlakyStore>();
    flaky_ = flaky.get();
    store_ = std::make_unique<InstrumentedJobStore>(std::move(flaky), *metrics_,
                                                    [this](bool ok) { changes_.push_back(ok); });
  }
  uint64_t Count(const std::string& operation) {
    return (*metrics_->store_operation_duration_seconds.Add({{"operation", operation}}))
        ->Collect()
        .count;
  }

  metrics::Registry registry_;
  std::unique_ptr<metrics::ServerMetrics> metrics_ = *metrics::ServerMetrics::Create(registry_);
  FlakyStore* flaky_ = nullptr;
  std::unique_ptr<InstrumentedJobStore> store_;
  std::vector<bool> changes_;
};

TEST_F(InstrumentedJobStoreTest, TimesEachOperationUnderItsName) {
  JobRecord record;
  record.job.set_job_id("j1");
  record.job.set_state(v1::JOB_STATE_QUEUED);
  std::vector<v1::JobEvent> events(1);
  ASSERT_TRUE(store_->CreateJob(record, events).ok());
  EXPECT_EQ(record.job.last_event_sequence(), 1);  // The wrapped store's work, passed through.
  ASSERT_TRUE(store_->UpdateJob(record, events).ok());
  EXPECT_TRUE(store_->GetJob("j1").ok());
  EXPECT_TRUE(absl::IsNotFound(store_->GetJob("nope").status()));
  EXPECT_TRUE(absl::IsNotFound(store_->FindByRequestId("r").status()));
  EXPECT_EQ(store_->ListJobs({})->jobs.size(), 1u);
  EXPECT_EQ(store_->ReadEvents("j1", 0, 10)->size(), 2u);
  EXPECT_EQ(store_->ListUnfinishedJobs()->size(), 1u);
  EXPECT_EQ(Count("create_job"), 1u);
  EXPECT_EQ(Count("update_job"), 1u);
  EXPECT_EQ(Count("get_job"), 2u);
  EXPECT_EQ(Count("find_by_request_id"), 1u);
  EXPECT_EQ(Count("list_jobs"), 1u);
  EXPECT_EQ(Count("read_events"), 1u);
  EXPECT_EQ(Count("list_unfinished_jobs"), 1u);
  EXPECT_TRUE(store_->Health().ok());  // NOT_FOUND is an answer, not a failure.
  EXPECT_TRUE(changes_.empty());
  EXPECT_NE(registry_.Serialize().find(
                "quantd_store_operation_duration_seconds_count{operation=\"get_job\"} 2"),
            std::string::npos);
}

TEST_F(InstrumentedJobStoreTest, HealthFollowsStoreFailuresAndRecovery) {
  flaky_->failure = absl::InternalError("job store /x/quantd.db: disk I/O error");
  EXPECT_FALSE(store_->GetJob("j1").ok());
  EXPECT_FALSE(store_->GetJob("j1").ok());
  EXPECT_EQ(store_->Health().code(), absl::StatusCode::kInternal);
  EXPECT_NE(store_->Health().message().find("disk I/O error"), std::string::npos);
  flaky_->failure = absl::OkStatus();
  EXPECT_TRUE(absl::IsNotFound(store_->GetJob("j1").status()));  // Not a success either.
  EXPECT_FALSE(store_->Health().ok());
  EXPECT_TRUE(store_->ListJobs({}).ok());
  EXPECT_TRUE(store_->Health().ok());
  EXPECT_EQ(changes_, (std::vector<bool>{false, true}));  // Each change reported once.
}

}  // namespace
}  // namespace quantd::server
