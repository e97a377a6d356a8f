// The JobStore contract, run against every backend (memory_job_store_test.cc,
// sqlite_job_store_test.cc). A backend's test instantiates JobStoreConformance with a factory.
#ifndef QUANTD_TESTS_SERVER_JOB_STORE_CONFORMANCE_H_
#define QUANTD_TESTS_SERVER_JOB_STORE_CONFORMANCE_H_

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <set>
#include <string>

#include "google/protobuf/util/time_util.h"
#include "store/job_store.h"

namespace quantd::server {

using JobStoreFactory = std::function<std::unique_ptr<JobStore>()>;

class JobStoreConformance : public ::testing::TestWithParam<JobStoreFactory> {
 protected:
  void SetUp() override { store_ = GetParam()(); }

  static JobRecord NewJob(const std::string& id, int64_t create_micros,
                          const std::string& request_id = "") {
    JobRecord record;
    record.job.set_job_id(id);
    record.job.set_name("jobs/" + id);
    record.job.set_state(v1::JOB_STATE_QUEUED);
    record.job.set_request_id(request_id);
    record.job.mutable_spec()->set_model_dir("/m/" + id);
    *record.job.mutable_create_time() =
        google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(create_micros);
    return record;
  }
  static std::vector<v1::JobEvent> Logs(int n) {
    std::vector<v1::JobEvent> events(n);
    for (int i = 0; i < n; ++i) events[i].mutable_log()->set_message("line " + std::to_string(i));
    return events;
  }
  void Create(JobRecord record, int events = 1) {
    std::vector<v1::JobEvent> e = Logs(events);
    ASSERT_TRUE(store_->CreateJob(record, e).ok());
  }

  std::unique_ptr<JobStore> store_;
};

TEST_P(JobStoreConformance, CreateNumbersEventsFromOneAndGetReturnsTheJob) {
  JobRecord record = NewJob("a", 1000);
  std::vector<v1::JobEvent> events = Logs(2);
  ASSERT_TRUE(store_->CreateJob(record, events).ok());
  EXPECT_EQ(events[0].sequence(), 1);
  EXPECT_EQ(events[1].sequence(), 2);
  EXPECT_EQ(record.job.last_event_sequence(), 2);
  auto got = store_->GetJob("a");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->job.spec().model_dir(), "/m/a");
  EXPECT_EQ(got->job.last_event_sequence(), 2);
  EXPECT_EQ(store_->GetJob("b").status().code(), absl::StatusCode::kNotFound);
}

TEST_P(JobStoreConformance, DuplicateIdOrRequestIdIsAlreadyExists) {
  Create(NewJob("a", 1, "req-1"));
  JobRecord same_id = NewJob("a", 2);
  std::vector<v1::JobEvent> e = Logs(1);
  EXPECT_EQ(store_->CreateJob(same_id, e).code(), absl::StatusCode::kAlreadyExists);
  JobRecord same_request = NewJob("b", 2, "req-1");
  EXPECT_EQ(store_->CreateJob(same_request, e).code(), absl::StatusCode::kAlreadyExists);
  auto found = store_->FindByRequestId("req-1");
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->job.job_id(), "a");
  EXPECT_EQ(store_->FindByRequestId("req-2").status().code(), absl::StatusCode::kNotFound);
  // Jobs without a request_id never collide with each other.
  Create(NewJob("c", 3));
  Create(NewJob("d", 4));
}

TEST_P(JobStoreConformance, UpdateAppendsAfterTheStoredSequenceWhateverTheRecordSays) {
  Create(NewJob("a", 1), 3);
  JobRecord stale = NewJob("a", 1);  // last_event_sequence 0 in the caller's copy.
  stale.job.set_state(v1::JOB_STATE_RUNNING);
  stale.last_report_number = 7;
  std::vector<v1::JobEvent> events = Logs(2);
  ASSERT_TRUE(store_->UpdateJob(stale, events).ok());
  EXPECT_EQ(events[0].sequence(), 4);
  EXPECT_EQ(events[1].sequence(), 5);
  EXPECT_EQ(stale.job.last_event_sequence(), 5);
  auto got = store_->GetJob("a");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->job.state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(got->last_report_number, 7);
  JobRecord unknown = NewJob("zz", 1);
  EXPECT_EQ(store_->UpdateJob(unknown, events).code(), absl::StatusCode::kNotFound);
}

TEST_P(JobStoreConformance, ReadEventsPagesInOrderWithoutGapsOrDuplicates) {
  Create(NewJob("a", 1), 10);
  for (int i = 0; i < 5; ++i) {
    JobRecord r = *store_->GetJob("a");
    std::vector<v1::JobEvent> e = Logs(3);
    ASSERT_TRUE(store_->UpdateJob(r, e).ok());
  }
  std::vector<int64_t> seen;
  int64_t after = 0;
  while (true) {
    auto page = store_->ReadEvents("a", after, 4);
    ASSERT_TRUE(page.ok());
    if (page->empty()) break;
    for (const auto& e : *page) seen.push_back(e.sequence());
    after = page->back().sequence();
  }
  ASSERT_EQ(seen.size(), 25u);
  for (size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], static_cast<int64_t>(i) + 1);
  EXPECT_EQ(store_->ReadEvents("nope", 0, 4).status().code(), absl::StatusCode::kNotFound);
}

TEST_P(JobStoreConformance, ListIsNewestFirstPagedAndFiltered) {
  for (int i = 0; i < 7; ++i) {
    JobRecord r = NewJob("j" + std::to_string(i), 100 + i);
    if (i % 2 == 0) (*r.job.mutable_spec()->mutable_labels())["team"] = "search";
    if (i == 3) r.job.set_state(v1::JOB_STATE_FAILED);
    Create(r);
  }
  ListJobsQuery query;
  query.page_size = 3;
  std::vector<std::string> ids;
  do {
    auto page = store_->ListJobs(query);
    ASSERT_TRUE(page.ok());
    for (const auto& job : page->jobs) ids.push_back(job.job_id());
    query.page_token = page->next_page_token;
  } while (!query.page_token.empty());
  EXPECT_EQ(ids, (std::vector<std::string>{"j6", "j5", "j4", "j3", "j2", "j1", "j0"}));

  ListJobsQuery labelled;
  labelled.labels["team"] = "search";
  auto page = store_->ListJobs(labelled);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->jobs.size(), 4u);
  EXPECT_EQ(page->jobs[0].job_id(), "j6");

  ListJobsQuery failed;
  failed.states = {v1::JOB_STATE_FAILED};
  page = store_->ListJobs(failed);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->jobs.size(), 1u);
  EXPECT_EQ(page->jobs[0].job_id(), "j3");

  ListJobsQuery bad;
  bad.page_token = "garbage";
  EXPECT_EQ(store_->ListJobs(bad).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(JobStoreConformance, UnfinishedJobsExcludeTerminalStates) {
  Create(NewJob("q", 1));
  JobRecord running = NewJob("r", 2);
  running.job.set_state(v1::JOB_STATE_RUNNING);
  Create(running);
  for (auto [id, state] :
       {std::pair{"s", v1::JOB_STATE_SUCCEEDED}, std::pair{"f", v1::JOB_STATE_FAILED},
        std::pair{"c", v1::JOB_STATE_CANCELLED}}) {
    JobRecord r = NewJob(id, 3);
    r.job.set_state(state);
    Create(r);
  }
  auto unfinished = store_->ListUnfinishedJobs();
  ASSERT_TRUE(unfinished.ok());
  std::set<std::string> ids;
  for (const auto& r : *unfinished) ids.insert(r.job.job_id());
  EXPECT_EQ(ids, (std::set<std::string>{"q", "r"}));
}

}  // namespace quantd::server

#endif  // QUANTD_TESTS_SERVER_JOB_STORE_CONFORMANCE_H_
