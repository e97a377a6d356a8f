// The service end to end: real quantd, quantd-worker and quantctl processes on 127.0.0.1 with the
// fake engine (tests/worker/fake_engine). Every wait is bounded.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/str_split.h"
#include "file_digest.h"
#include "google/protobuf/util/time_util.h"
#include "service_harness.h"

namespace quantd::testing {
namespace {

namespace fs = std::filesystem;
using google::protobuf::util::TimeUtil;

std::string TestName() { return ::testing::UnitTest::GetInstance()->current_test_info()->name(); }

// quantctl's "artifact <path> <size> <sha256>" lines.
std::vector<std::vector<std::string>> ArtifactLines(const std::string& out) {
  std::vector<std::vector<std::string>> lines;
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    if (f.size() == 4 && f[0] == "artifact") lines.push_back(f);
  }
  return lines;
}

TEST(ServiceIntegrationTest, SubmitFollowSucceedsThroughTheLocalWorkerWithVerifiedArtifacts) {
  ServiceHarness h(TestName());
  // Default wiring: the server starts its own local worker.
  auto server = h.StartServer(
      {"--local-worker=true", "--engine=" + ServiceHarness::Binary("fake-quantize-awq")});
  ASSERT_GT(h.port(), 0);
  const std::string model = h.MakeModel("model");
  CommandResult r =
      h.Quantctl({"submit", "--model-dir", model, "--output-dir", (h.dir() / "out").string(),
                  "--calib-jsonl", h.calib(), "--num-calib", "16", "--follow"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("state running"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("progress"), std::string::npos);
  EXPECT_NE(r.out.find("succeeded"), std::string::npos);
  auto artifacts = ArtifactLines(r.out.substr(r.out.find("succeeded")));
  ASSERT_EQ(artifacts.size(), 3u) << r.out;
  for (const auto& a : artifacts) {
    ASSERT_TRUE(fs::exists(a[1])) << a[1];
    EXPECT_EQ(std::to_string(fs::file_size(a[1])), a[2]);
    EXPECT_EQ(*worker::Sha256File(a[1]), a[3]) << a[1];
  }
  // No temporary files are left next to the checkpoint.
  for (const auto& entry : fs::directory_iterator(h.dir() / "out")) {
    EXPECT_EQ(entry.path().filename().string().find(".quantd-tmp"), std::string::npos);
  }
  CommandResult workers = h.Quantctl({"workers"});
  EXPECT_EQ(workers.exit_code, 0);
  EXPECT_NE(workers.out.find("workers/local"), std::string::npos) << workers.out;
  server->Signal(SIGTERM);
  EXPECT_EQ(server->Wait(absl::Seconds(20)), 0);  // Clean shutdown, local worker included.
}

TEST(ServiceIntegrationTest, ServerKilledMidJobRestartsAndTheJobFinishesOnceWithoutGaps) {
  ServiceHarness h(TestName());
  auto server = h.StartServer();
  const int port = h.port();
  auto worker = h.StartWorker("w1");
  auto client = h.Client();
  const std::string slow = h.MakeModel("slow", R"({"steps": 20, "step_ms": 150})");
  auto running = client->Submit(h.Request(slow, "out-running"));
  ASSERT_TRUE(running.ok()) << running.status();
  auto queued = client->Submit(h.Request(slow, "out-queued"));  // Waits behind it (1 slot).
  ASSERT_TRUE(queued.ok());
  ASSERT_TRUE(h.WaitForState(running->name(), v1::JOB_STATE_RUNNING, absl::Seconds(20)));
  // A follower whose connection the crash drops: it must resume where it was.
  const std::string follower_log = (h.dir() / "follower.log").string();
  auto follower =
      ChildProcess::Start({ServiceHarness::Binary("quantctl"), "--address=" + h.address(), "logs",
                           "-f", running->name(), "-o", "json"},
                          {}, follower_log);
  std::this_thread::sleep_for(std::chrono::milliseconds(700));  // Some progress is stored.

  server->Signal(SIGKILL);
  server->Wait(absl::Seconds(5));
  std::this_thread::sleep_for(std::chrono::milliseconds(800));  // Progress while it is down.
  server = h.StartServer({}, port);
  ASSERT_EQ(h.port(), port);
  client = h.Client();

  ASSERT_TRUE(h.WaitForState(running->name(), v1::JOB_STATE_SUCCEEDED, absl::Seconds(30)));
  ASSERT_TRUE(h.WaitForState(queued->name(), v1::JOB_STATE_SUCCEEDED, absl::Seconds(30)));
  auto done = client->Get(running->name());
  EXPECT_EQ(done->attempt(), 1);  // Adopted, not rerun.
  EXPECT_EQ(h.RunsOf(h.dir() / "out-running"), 1);
  std::vector<v1::JobEvent> events = AllEvents(*client, running->name());
  EXPECT_TRUE(Contiguous(events));
  EXPECT_EQ(static_cast<int64_t>(events.size()), done->last_event_sequence());
  int progress = 0, running_states = 0;
  for (const auto& e : events) {
    progress += e.has_progress();
    running_states += e.has_state_change() && e.state_change().state() == v1::JOB_STATE_RUNNING;
  }
  EXPECT_EQ(progress, 22);  // loading + 20 layers + exporting, each exactly once.
  EXPECT_EQ(running_states, 1);
  EXPECT_EQ(client->List({})->jobs_size(), 2);  // Nothing submitted was lost.

  EXPECT_EQ(follower->Wait(absl::Seconds(20)), 0);
  std::ifstream in(follower_log);
  std::vector<int64_t> followed;
  for (std::string line; std::getline(in, line);) {
    const size_t at = line.find("\"sequence\":\"");
    if (line.rfind("{", 0) == 0 && at != std::string::npos) {
      followed.push_back(std::stoll(line.substr(at + 12)));
    }
  }
  ASSERT_EQ(static_cast<int64_t>(followed.size()), done->last_event_sequence());
  for (size_t i = 0; i < followed.size(); ++i) EXPECT_EQ(followed[i], static_cast<int64_t>(i) + 1);
}

TEST(ServiceIntegrationTest, WorkerKilledMidJobIsRequeuedAndCompletesOnAnotherWorker) {
  ServiceHarness h(TestName());
  auto server = h.StartServer({"--lease-seconds=1"});
  auto w1 = h.StartWorker("w1");
  auto client = h.Client();
  auto job = client->Submit(h.Request(h.MakeModel("m", R"({"steps": 10, "step_ms": 200})"), "out"));
  ASSERT_TRUE(job.ok());
  ASSERT_TRUE(h.WaitForState(job->name(), v1::JOB_STATE_RUNNING, absl::Seconds(20)));
  auto w2 = h.StartWorker("w2");
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  w1->Signal(SIGKILL);
  w1->Wait(absl::Seconds(5));
  ASSERT_TRUE(h.WaitForState(job->name(), v1::JOB_STATE_SUCCEEDED, absl::Seconds(30)));
  auto done = client->Get(job->name());
  EXPECT_EQ(done->attempt(), 2);
  EXPECT_EQ(done->worker(), "workers/w2");
  std::vector<v1::JobEvent> events = AllEvents(*client, job->name());
  EXPECT_TRUE(Contiguous(events));
  bool requeued = false;
  for (const auto& e : events) {
    requeued |= e.has_state_change() && e.state_change().state() == v1::JOB_STATE_QUEUED &&
                e.state_change().attempt() == 2 &&
                e.state_change().error().message().find("w1") != std::string::npos;
  }
  EXPECT_TRUE(requeued);
  for (const auto& a : done->artifacts()) EXPECT_EQ(*worker::Sha256File(a.path()), a.sha256());
}

TEST(ServiceIntegrationTest, CancelQueuedAtOnceAndRunningWithin5sLeavingNoPartialOutput) {
  ServiceHarness h(TestName());
  auto server = h.StartServer();
  auto worker = h.StartWorker("w1");
  auto client = h.Client();
  const std::string slow = h.MakeModel("slow", R"({"steps": 100, "step_ms": 200})");
  auto running = client->Submit(h.Request(slow, "out-running"));
  auto queued = client->Submit(h.Request(slow, "out-queued"));
  ASSERT_TRUE(running.ok() && queued.ok());
  ASSERT_TRUE(h.WaitForState(running->name(), v1::JOB_STATE_RUNNING, absl::Seconds(20)));
  std::this_thread::sleep_for(std::chrono::milliseconds(600));  // Partial output exists now.
  ASSERT_TRUE(fs::exists(h.dir() / "out-running" / ".model.safetensors.quantd-tmp"));

  CommandResult q = h.Quantctl({"cancel", queued->name()});
  EXPECT_EQ(q.exit_code, 0) << q.err;
  EXPECT_NE(q.out.find("cancelled"), std::string::npos) << q.out;
  const absl::Time start = absl::Now();
  auto cancelling = client->Cancel(running->name());
  ASSERT_TRUE(cancelling.ok());
  ASSERT_TRUE(h.WaitForState(running->name(), v1::JOB_STATE_CANCELLED, absl::Seconds(5)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_FALSE(fs::exists(h.dir() / "out-running"));  // Created by the job: removed with it.
  EXPECT_FALSE(fs::exists(h.dir() / "out-queued"));
  EXPECT_EQ(h.RunsOf(h.dir() / "out-queued"), 0);
  // quantctl reports a cancelled job with its own exit code.
  CommandResult logs = h.Quantctl({"logs", "-f", running->name()});
  EXPECT_EQ(logs.exit_code, 3) << logs.out << logs.err;
}

TEST(ServiceIntegrationTest, EngineThatIgnoresSigtermIsKilledAndCleanedUp) {
  ServiceHarness h(TestName());
  auto server = h.StartServer();
  auto worker = h.StartWorker("w1");  // --cancel-grace-seconds=2
  auto client = h.Client();
  auto job = client->Submit(h.Request(
      h.MakeModel("stubborn", R"({"steps": 100, "step_ms": 100, "ignore_sigterm": true})"), "out"));
  ASSERT_TRUE(h.WaitForState(job->name(), v1::JOB_STATE_RUNNING, absl::Seconds(20)));
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  ASSERT_TRUE(client->Cancel(job->name()).ok());
  ASSERT_TRUE(h.WaitForState(job->name(), v1::JOB_STATE_CANCELLED, absl::Seconds(5)));
  EXPECT_FALSE(fs::exists(h.dir() / "out"));
}

TEST(ServiceIntegrationTest, FailingAndCrashingEnginesFailTheJobButNotTheWorker) {
  ServiceHarness h(TestName());
  auto server = h.StartServer();
  auto worker = h.StartWorker("w1");
  auto client = h.Client();
  auto failing = client->Submit(
      h.Request(h.MakeModel("bad", R"({"fail": "spec.model_dir: tensor x is missing"})"), "o1"));
  ASSERT_TRUE(h.WaitForState(failing->name(), v1::JOB_STATE_FAILED, absl::Seconds(20)));
  EXPECT_EQ(client->Get(failing->name())->error().message(), "spec.model_dir: tensor x is missing");
  auto crashing = client->Submit(h.Request(h.MakeModel("crash", R"({"crash": true})"), "o2"));
  ASSERT_TRUE(h.WaitForState(crashing->name(), v1::JOB_STATE_FAILED, absl::Seconds(20)));
  EXPECT_NE(client->Get(crashing->name())->error().message().find("signal"), std::string::npos);
  EXPECT_FALSE(fs::exists(h.dir() / "o2" / ".model.safetensors.quantd-tmp"));
  CommandResult follow = h.Quantctl({"logs", "-f", crashing->name()});
  EXPECT_EQ(follow.exit_code, 1);
  // The same worker still runs the next job.
  auto fine = client->Submit(h.Request(h.MakeModel("fine"), "o3"));
  EXPECT_TRUE(h.WaitForState(fine->name(), v1::JOB_STATE_SUCCEEDED, absl::Seconds(20)));
}

TEST(ServiceIntegrationTest, TwoWorkersFourJobsRunInParallelEachExactlyOnce) {
  ServiceHarness h(TestName());
  auto server = h.StartServer();
  auto w1 = h.StartWorker("w1");
  auto w2 = h.StartWorker("w2");
  auto client = h.Client();
  const std::string model = h.MakeModel("m", R"({"steps": 8, "step_ms": 150})");
  std::vector<std::string> names;
  for (int i = 0; i < 4; ++i) {
    auto job = client->Submit(h.Request(model, "out" + std::to_string(i)));
    ASSERT_TRUE(job.ok());
    names.push_back(job->name());
  }
  std::set<std::string> workers;
  std::vector<std::pair<int64_t, int64_t>> intervals;
  for (const std::string& name : names) {
    ASSERT_TRUE(h.WaitForState(name, v1::JOB_STATE_SUCCEEDED, absl::Seconds(30))) << name;
    auto job = client->Get(name);
    workers.insert(job->worker());
    EXPECT_EQ(job->attempt(), 1);
    intervals.emplace_back(TimeUtil::TimestampToMilliseconds(job->start_time()),
                           TimeUtil::TimestampToMilliseconds(job->end_time()));
  }
  EXPECT_EQ(workers, (std::set<std::string>{"workers/w1", "workers/w2"}));
  int overlapping_pairs = 0;
  for (size_t i = 0; i < intervals.size(); ++i) {
    for (size_t j = i + 1; j < intervals.size(); ++j) {
      overlapping_pairs +=
          intervals[i].first < intervals[j].second && intervals[j].first < intervals[i].second;
    }
  }
  EXPECT_GE(overlapping_pairs, 2);  // Two at a time, never more than one per worker.
  for (int i = 0; i < 4; ++i) EXPECT_EQ(h.RunsOf(h.dir() / ("out" + std::to_string(i))), 1);
}

// A job for several GPUs through every process: quantctl's --gpus, the server's placement on a
// worker with that many slots (a CPU worker's slots stand in for GPUs), the engine told --gpus;
// one asking for more than any worker has says why in `quantctl get`.
TEST(ServiceIntegrationTest, AMultiGpuJobRunsOnAWorkerWithThatManySlotsOrSaysWhyItWaits) {
  ServiceHarness h(TestName());
  auto server = h.StartServer();
  auto worker = h.StartWorker("w1", {"--capacity=2"});
  const std::string model = h.MakeModel("m", R"({"steps": 2, "step_ms": 10})");
  CommandResult two =
      h.Quantctl({"submit", "--model-dir", model, "--output-dir", (h.dir() / "two").string(),
                  "--calib-jsonl", h.calib(), "--gpus", "2", "--follow"});
  ASSERT_EQ(two.exit_code, 0) << two.out << two.err;
  EXPECT_NE(two.out.find("fake engine: --gpus 2"), std::string::npos) << two.out;

  CommandResult three =
      h.Quantctl({"submit", "--model-dir", model, "--output-dir", (h.dir() / "three").string(),
                  "--calib-jsonl", h.calib(), "--gpus", "3", "-o", "json"});
  ASSERT_EQ(three.exit_code, 0) << three.out << three.err;
  const size_t at = three.out.find("jobs/");
  ASSERT_NE(at, std::string::npos) << three.out;
  const std::string name = three.out.substr(at, three.out.find('"', at) - at);
  std::string waiting;
  for (int i = 0; i < 100 && waiting.find("too_few_gpus") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    waiting = h.Quantctl({"get", name}).out;
  }
  EXPECT_NE(waiting.find("waiting:  too_few_gpus"), std::string::npos) << waiting;
  EXPECT_NE(waiting.find("the most one connected worker gives one job is 2"), std::string::npos)
      << waiting;
  EXPECT_EQ(h.Quantctl({"submit", "--model-dir", model, "--output-dir",
                        (h.dir() / "none").string(), "--calib-jsonl", h.calib(), "--gpus", "0"})
                .exit_code,
            2);
}

TEST(ServiceIntegrationTest, LateAndReconnectingWatchersGetEveryEventExactlyOnceInOrder) {
  ServiceHarness h(TestName());
  auto server = h.StartServer();
  auto worker = h.StartWorker("w1");
  auto client = h.Client();
  auto job = client->Submit(h.Request(h.MakeModel("m", R"({"steps": 15, "step_ms": 100})"), "out"));
  ASSERT_TRUE(h.WaitForState(job->name(), v1::JOB_STATE_RUNNING, absl::Seconds(20)));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  // Late: starts from 0 while the job runs.
  std::vector<int64_t> late;
  std::thread late_watcher([&] {
    auto c = h.Client();
    EXPECT_TRUE(c->Follow(job->name(), 0, [&](const v1::JobEvent& e) {
                   late.push_back(e.sequence());
                 }).ok());
  });
  // Reconnecting: reads 4 events, drops the stream, resumes from the last one it saw.
  std::vector<int64_t> resumed;
  EXPECT_TRUE(
      client
          ->Follow(
              job->name(), 0, [&](const v1::JobEvent& e) { resumed.push_back(e.sequence()); }, 4)
          .ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_TRUE(client
                  ->Follow(job->name(), resumed.back(),
                           [&](const v1::JobEvent& e) { resumed.push_back(e.sequence()); })
                  .ok());
  late_watcher.join();
  // quantctl logs -f from sequence 0 after the fact: the whole history, then it ends.
  CommandResult logs = h.Quantctl({"logs", "-f", job->name(), "-o", "json"});
  EXPECT_EQ(logs.exit_code, 0);
  const int64_t last = client->Get(job->name())->last_event_sequence();
  for (const auto* seen : {&late, &resumed}) {
    ASSERT_EQ(static_cast<int64_t>(seen->size()), last);
    for (int64_t i = 0; i < last; ++i) EXPECT_EQ((*seen)[i], i + 1);
  }
  EXPECT_EQ(std::count(logs.out.begin(), logs.out.end(), '\n'), last);
}

TEST(ServiceIntegrationTest, InvalidRequestsAreRejectedNamingTheFieldAndTheServerKeepsServing) {
  ServiceHarness h(TestName());
  auto server = h.StartServer();
  auto client = h.Client();
  const std::string model = h.MakeModel("m");
  CommandResult bad_group =
      h.Quantctl({"submit", "--model-dir", model, "--output-dir", (h.dir() / "o").string(),
                  "--calib-jsonl", h.calib(), "--group-size", "96"});
  EXPECT_EQ(bad_group.exit_code, 2);
  EXPECT_NE(bad_group.err.find("spec.group_size"), std::string::npos) << bad_group.err;
  struct Case {
    std::function<void(v1::JobSpec*)> mutate;
    std::string field;
  } cases[] = {
      {[](v1::JobSpec* s) { s->set_model_dir("relative"); }, "spec.model_dir"},
      {[](v1::JobSpec* s) { s->set_model_dir("/usr"); }, "spec.model_dir"},
      {[&](v1::JobSpec* s) { s->set_calib_jsonl(h.dir().string() + "/none.jsonl"); },
       "spec.calib_jsonl"},
      {[](v1::JobSpec* s) { s->set_max_seq_len(1 << 20); }, "spec.max_seq_len"},
      {[](v1::JobSpec* s) { s->set_output_dir(""); }, "spec.output_dir"},
  };
  for (const Case& c : cases) {
    v1::SubmitJobRequest request = h.Request(model, "o");
    c.mutate(request.mutable_spec());
    auto job = client->Submit(request);
    EXPECT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_NE(job.status().message().find(c.field), std::string::npos) << job.status();
  }
  EXPECT_EQ(client->Get("jobs/nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(h.Quantctl({"get", "nope"}).exit_code, 2);
  // Still serving, and nothing invalid was stored.
  auto ok = client->Submit(h.Request(model, "o"));
  EXPECT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(client->List({})->jobs_size(), 1);
  CommandResult list = h.Quantctl({"list", "-o", "json"});
  EXPECT_EQ(list.exit_code, 0);
  EXPECT_NE(list.out.find("\"state\":\"JOB_STATE_QUEUED\""), std::string::npos) << list.out;
}

TEST(ServiceIntegrationTest, TlsCredentialsFromFlagsAndEnvironment) {
  ServiceHarness h(TestName());
  const std::string cert = (h.dir() / "cert.pem").string(), key = (h.dir() / "key.pem").string();
  const std::string make_cert =
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost "
      "-addext subjectAltName=IP:127.0.0.1 -keyout " +
      key + " -out " + cert + " 2>/dev/null";
  if (std::system(make_cert.c_str()) != 0) GTEST_SKIP() << "openssl cannot make a certificate";
  auto server = h.StartServer({"--tls-cert=" + cert, "--tls-key=" + key});
  ASSERT_GT(h.port(), 0);
  auto worker = h.StartWorker("w1", {"--tls-ca=" + cert});
  CommandResult plain = h.Quantctl({"list"}, absl::Seconds(20));
  EXPECT_EQ(plain.exit_code, 4);             // A plaintext client cannot talk to a TLS server.
  setenv("QUANTD_TLS_CA", cert.c_str(), 1);  // Inherited by the quantctl child.
  CommandResult r = h.Quantctl({"submit", "--model-dir", h.MakeModel("m"), "--output-dir",
                                (h.dir() / "out").string(), "--calib-jsonl", h.calib(), "-f"});
  unsetenv("QUANTD_TLS_CA");
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("on workers/w1"), std::string::npos) << r.out;  // The worker used TLS too.
}

TEST(ServiceIntegrationTest, QuantctlExitCodeForAnUnreachableServer) {
  ServiceHarness h(TestName());  // No server started: quantctl dials 127.0.0.1:0.
  CommandResult r = h.Quantctl({"list"}, absl::Seconds(40));
  EXPECT_EQ(r.exit_code, 4) << r.err;
}

}  // namespace
}  // namespace quantd::testing
