// Who may do what, end to end: real quantd, quantd-worker, quantctl and fake engine processes on
// 127.0.0.1 with credentials made at test time (security_fixture.h). Callers without a credential
// are UNAUTHENTICATED; wrong roles and other tenants are PERMISSION_DENIED; a forged worker cannot
// take or finish a job; job paths cannot escape the allowed roots, not even by a symlink swapped in
// after submit; bad input is answered with the field it concerns; a non-loopback address without
// TLS and authentication does not start.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <sstream>
#include <string_view>
#include <thread>

#include "absl/strings/str_cat.h"
#include "quantd/v1/worker_service.grpc.pb.h"
#include "security_fixture.h"
#include "service_harness.h"

namespace quantd::testing {
namespace {

namespace fs = std::filesystem;

std::string TestName() { return ::testing::UnitTest::GetInstance()->current_test_info()->name(); }

std::string Slurp(const fs::path& path) {
  std::stringstream text;
  text << std::ifstream(path).rdbuf();
  return text.str();
}

// A submit request for files beneath `dir`.
v1::SubmitJobRequest RequestIn(const fs::path& dir, const std::string& out) {
  v1::SubmitJobRequest request;
  request.mutable_spec()->set_model_dir((dir / "model").string());
  request.mutable_spec()->set_output_dir((dir / out).string());
  request.mutable_spec()->set_calib_jsonl((dir / "calib.jsonl").string());
  return request;
}

// Copies the harness's calibration file and makes a model under `dir`.
void Populate(ServiceHarness& h, const fs::path& dir, const std::string& fake_engine_json = "") {
  fs::create_directories(dir);
  fs::copy_file(h.calib(), dir / "calib.jsonl", fs::copy_options::overwrite_existing);
  h.MakeModel(fs::relative(dir / "model", h.dir()).string(), fake_engine_json);
}

// An HTTPS client for the metrics endpoint whose "metrics at https://127.0.0.1:PORT" line is the
// first in `log` at or after `from`, verifying the server against `ca`. Null when there is none.
std::unique_ptr<httplib::SSLClient> MetricsEndpointIn(const std::string& log, size_t from,
                                                      const std::string& ca, size_t* at) {
  constexpr std::string_view kLine = "metrics at https://127.0.0.1:";
  *at = log.find(kLine, from);
  if (*at == std::string::npos) return nullptr;
  auto client = std::make_unique<httplib::SSLClient>("127.0.0.1",
                                                     std::atoi(log.c_str() + *at + kLine.size()));
  client->set_ca_cert_path(ca.c_str());
  client->enable_server_certificate_verification(true);
  return client;
}

// One WorkerService.Connect stream with `token` as worker `worker_id`: the hello's outcome.
struct RawWorker {
  std::unique_ptr<v1::WorkerService::Stub> stub;
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReaderWriter<v1::WorkerMessage, v1::ServerMessage>> stream;

  RawWorker(const std::string& address, const std::string& token, const std::string& worker_id) {
    stub = v1::WorkerService::NewStub(
        grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
    credentials::AttachToken(context, token);
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    stream = stub->Connect(&context);
    v1::WorkerMessage hello;
    hello.mutable_hello()->set_worker_id(worker_id);
    stream->Write(hello);
  }
  // The ServerHello, or the stream's final status when there is none.
  grpc::Status Hello() {
    v1::ServerMessage reply;
    if (stream->Read(&reply) && reply.has_hello()) return grpc::Status::OK;
    stream->WritesDone();
    return stream->Finish();
  }
};

TEST(SecurityIntegrationTest, CallersAreAuthenticatedAndSeeOnlyWhatTheirRoleAndTenantAllow) {
  ServiceHarness h(TestName());
  Populate(h, h.dir() / "search", R"({"steps": 200, "step_ms": 50})");
  fs::create_directories(h.dir() / "ads");
  const fs::path identities = h.dir() / "identities.json";
  WriteIdentities(identities, {{"alice", "search", {"submitter"}, "alice-token", ""},
                               {"carol", "search", {"submitter"}, "carol-token", ""},
                               {"victor", "search", {"viewer"}, "victor-token", ""},
                               {"bob", "ads", {"submitter"}, "bob-token", ""},
                               {"root", "ops", {"admin"}, "root-token", ""},
                               {"gpu-1", "", {"worker"}, "worker-token", ""}});
  auto server = h.StartServer({"--identities=" + identities.string(),
                               "--allowed-roots=" + (h.dir() / "{tenant}").string()});
  ASSERT_GT(h.port(), 0) << ServerLog(h.dir());
  const v1::SubmitJobRequest request = RequestIn(h.dir() / "search", "out");

  // No credential, or an unknown one: UNAUTHENTICATED, whatever the call.
  for (const std::string& token : {std::string(), std::string("not-a-token")}) {
    auto anyone = ClientWith(h.address(), token);
    EXPECT_EQ(anyone->Submit(request).status().code(), absl::StatusCode::kUnauthenticated);
    EXPECT_EQ(anyone->List({}).status().code(), absl::StatusCode::kUnauthenticated);
    EXPECT_EQ(anyone->Get("jobs/x").status().code(), absl::StatusCode::kUnauthenticated);
    EXPECT_EQ(anyone->ListWorkers().status().code(), absl::StatusCode::kUnauthenticated);
    EXPECT_EQ(anyone->Follow("jobs/x", 0, [](const v1::JobEvent&) {}).code(),
              absl::StatusCode::kUnauthenticated);
  }
  CommandResult no_token = h.Quantctl({"list"});
  EXPECT_EQ(no_token.exit_code, 5) << no_token.err;
  EXPECT_NE(no_token.err.find("UNAUTHENTICATED"), std::string::npos) << no_token.err;

  auto alice = ClientWith(h.address(), "alice-token");
  auto job = alice->Submit(request);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->tenant(), "search");
  EXPECT_EQ(job->owner(), "alice");

  // A viewer of the tenant sees the job but may not change anything.
  auto victor = ClientWith(h.address(), "victor-token");
  EXPECT_TRUE(victor->Get(job->name()).ok());
  EXPECT_EQ(victor->List({})->jobs_size(), 1);
  EXPECT_EQ(victor->Submit(RequestIn(h.dir() / "search", "v")).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(victor->Cancel(job->name()).status().code(), absl::StatusCode::kPermissionDenied);
  // Another submitter of the tenant sees it but cancels only its own jobs.
  auto carol = ClientWith(h.address(), "carol-token");
  EXPECT_TRUE(carol->Get(job->name()).ok());
  EXPECT_EQ(carol->Cancel(job->name()).status().code(), absl::StatusCode::kPermissionDenied);
  // Another tenant: nothing of it, and its own roots do not hold search's files.
  auto bob = ClientWith(h.address(), "bob-token");
  EXPECT_EQ(bob->Get(job->name()).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(bob->Cancel(job->name()).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(bob->Follow(job->name(), 0, [](const v1::JobEvent&) {}).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(bob->List({})->jobs_size(), 0);
  v1::ListJobsRequest search_jobs;
  search_jobs.set_tenant("search");
  EXPECT_EQ(bob->List(search_jobs).status().code(), absl::StatusCode::kPermissionDenied);
  auto escape = bob->Submit(RequestIn(h.dir() / "search", "bob-out"));
  EXPECT_EQ(escape.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(escape.status().message().find("outside the allowed roots"), std::string::npos)
      << escape.status();
  // A worker credential is for WorkerService only.
  auto worker = ClientWith(h.address(), "worker-token");
  EXPECT_EQ(worker->List({}).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(worker->Submit(request).status().code(), absl::StatusCode::kPermissionDenied);
  // quantctl with a token file: the same answers, exit 5 when denied.
  std::ofstream(h.dir() / "bob.token") << "bob-token\n";
  CommandResult bob_get =
      h.Quantctl({"--token-file", (h.dir() / "bob.token").string(), "get", job->job_id()});
  EXPECT_EQ(bob_get.exit_code, 5) << bob_get.err;
  EXPECT_NE(bob_get.err.find("PERMISSION_DENIED"), std::string::npos) << bob_get.err;
  setenv("QUANTD_TOKEN", "alice-token", 1);
  CommandResult alice_get = h.Quantctl({"get", job->job_id()});
  unsetenv("QUANTD_TOKEN");
  EXPECT_EQ(alice_get.exit_code, 0) << alice_get.err;
  // An admin sees every tenant and may cancel anything.
  auto root = ClientWith(h.address(), "root-token");
  EXPECT_EQ(root->List({})->jobs_size(), 1);
  auto cancelled = root->Cancel(job->name());
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(cancelled->state(), v1::JOB_STATE_CANCELLED);

  // Every mutating call is in the audit trail with its principal and outcome.
  const std::string log = ServerLog(h.dir());
  for (const std::string& line :
       {std::string("audit: principal=\"alice\" tenant=search method=SubmitJob"),
        std::string("audit: principal=\"carol\" tenant=search method=CancelJob"),
        std::string("audit: principal=\"root\" tenant=ops method=CancelJob"),
        std::string("audit: unauthenticated method=SubmitJob")}) {
    EXPECT_NE(log.find(line), std::string::npos) << line << "\n" << log;
  }
  EXPECT_NE(log.find("method=CancelJob peer="), std::string::npos);
  EXPECT_NE(log.find("outcome=PERMISSION_DENIED"), std::string::npos);
}

TEST(SecurityIntegrationTest, AForgedWorkerCannotTakeOrFinishAJobLeasedToAnother) {
  ServiceHarness h(TestName());
  const fs::path identities = h.dir() / "identities.json";
  WriteIdentities(identities, {{"alice", "", {"submitter"}, "alice-token", ""},
                               {"gpu-1", "", {"worker"}, "gpu1-token", ""},
                               {"gpu-2", "", {"worker"}, "gpu2-token", ""}});
  auto server = h.StartServer({"--identities=" + identities.string()});
  ASSERT_GT(h.port(), 0) << ServerLog(h.dir());
  std::ofstream(h.dir() / "gpu1.token") << "gpu1-token\n";
  auto w1 = h.StartWorker("w1", {"--token-file=" + (h.dir() / "gpu1.token").string()});
  auto no_credential = h.StartWorker("w9");  // Never gets in.
  auto alice = ClientWith(h.address(), "alice-token");
  auto job = alice->Submit(h.Request(h.MakeModel("m", R"({"steps": 40, "step_ms": 100})"), "out"));
  ASSERT_TRUE(job.ok()) << job.status();
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (absl::Now() < deadline && alice->Get(job->name())->state() != v1::JOB_STATE_RUNNING) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(alice->Get(job->name())->state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(alice->Get(job->name())->worker(), "workers/w1");

  // No worker credential at all, or a user's: refused at the door.
  EXPECT_EQ(RawWorker(h.address(), "", "w1").Hello().error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(RawWorker(h.address(), "alice-token", "w1").Hello().error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  // Another worker's credential claiming w1's id: refused.
  EXPECT_EQ(RawWorker(h.address(), "gpu2-token", "w1").Hello().error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  // Under its own id it may connect, but its reports about w1's job are not accepted.
  RawWorker forger(h.address(), "gpu2-token", "w2");
  ASSERT_TRUE(forger.Hello().ok());
  v1::WorkerMessage report;
  report.mutable_report()->set_job_id(job->job_id());
  report.mutable_report()->set_attempt(1);
  report.mutable_report()->set_report_number(1000);
  report.mutable_report()->mutable_artifact()->set_path("/tmp/forged/model.safetensors");
  v1::WorkerMessage finished;
  finished.mutable_job_finished()->set_job_id(job->job_id());
  finished.mutable_job_finished()->set_attempt(1);
  finished.mutable_job_finished()->set_state(v1::JOB_STATE_SUCCEEDED);
  finished.mutable_job_finished()->add_artifacts()->set_path("/tmp/forged/model.safetensors");
  ASSERT_TRUE(forger.stream->Write(report));
  ASSERT_TRUE(forger.stream->Write(finished));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(alice->Get(job->name())->state(), v1::JOB_STATE_RUNNING);  // Unaffected.

  // The job ends as its own worker says, with its own artifacts.
  deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline && alice->Get(job->name())->state() == v1::JOB_STATE_RUNNING) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  auto done = alice->Get(job->name());
  ASSERT_EQ(done->state(), v1::JOB_STATE_SUCCEEDED) << done->error().message();
  EXPECT_EQ(done->worker_principal(), "gpu-1");
  ASSERT_EQ(done->artifacts_size(), 3);
  for (const v1::Artifact& artifact : done->artifacts()) {
    EXPECT_EQ(artifact.path().rfind((h.dir() / "out").string(), 0), 0u) << artifact.path();
  }
  std::string all_events;
  EXPECT_TRUE(
      alice->Follow(job->name(), 0, [&](const v1::JobEvent& e) { all_events += e.DebugString(); })
          .ok());
  EXPECT_EQ(all_events.find("/tmp/forged"), std::string::npos);
  forger.context.TryCancel();
  (void)forger.stream->Finish();
  // The worker without a credential never got in.
  auto root_view = alice->ListWorkers();
  ASSERT_TRUE(root_view.ok());
  for (const v1::Worker& worker : root_view->workers()) EXPECT_NE(worker.worker_id(), "w9");
  const std::string log = ServerLog(h.dir());
  EXPECT_NE(log.find("method=WorkerService.Connect"), std::string::npos);
  EXPECT_NE(log.find("principal=\"gpu-2\" tenant=default method=WorkerService.Connect peer="),
            std::string::npos)
      << log;
}

TEST(SecurityIntegrationTest, PathsCannotEscapeTheRootsNotEvenBySymlinksSwappedInAfterSubmit) {
  ServiceHarness h(TestName());
  const fs::path root = h.dir() / "root", outside = h.dir() / "outside";
  Populate(h, root, R"({"steps": 100, "step_ms": 50})");
  fs::create_directories(outside);
  std::ofstream(outside / "config.json") << "{}";
  auto server = h.StartServer({"--allowed-roots=" + root.string()});
  ASSERT_GT(h.port(), 0) << ServerLog(h.dir());
  auto client = ClientWith(h.address(), "");
  auto expect_refused = [&](v1::SubmitJobRequest request, const std::string& field,
                            const std::string& why) {
    auto job = client->Submit(request);
    EXPECT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument) << field;
    EXPECT_NE(job.status().message().find(field), std::string::npos) << job.status();
    EXPECT_NE(job.status().message().find(why), std::string::npos) << job.status();
  };
  // "..", an absolute path outside, and a symlink out inside the model directory.
  v1::SubmitJobRequest dotdot = RequestIn(root, "out");
  dotdot.mutable_spec()->set_model_dir((root / ".." / "root" / "model").string());
  expect_refused(dotdot, "spec.model_dir", "\"..\"");
  v1::SubmitJobRequest passwd = RequestIn(root, "out");
  passwd.mutable_spec()->set_calib_jsonl("/etc/passwd");
  expect_refused(passwd, "spec.calib_jsonl", "outside the allowed roots");
  fs::create_directories(root / "evil");
  fs::create_symlink(outside / "config.json", root / "evil" / "config.json");
  v1::SubmitJobRequest evil = RequestIn(root, "out");
  evil.mutable_spec()->set_model_dir((root / "evil").string());
  expect_refused(evil, "spec.model_dir", "config.json");

  // Accepted while no worker runs; then the output directory and the calibration file become
  // symlinks out of the root.
  auto swapped_out = client->Submit(RequestIn(root, "out"));
  ASSERT_TRUE(swapped_out.ok()) << swapped_out.status();
  fs::create_directory_symlink(outside, root / "out");
  fs::copy_file(root / "calib.jsonl", root / "calib2.jsonl");
  v1::SubmitJobRequest second = RequestIn(root, "out2");
  second.mutable_spec()->set_calib_jsonl((root / "calib2.jsonl").string());
  auto swapped_calib = client->Submit(second);
  ASSERT_TRUE(swapped_calib.ok()) << swapped_calib.status();
  fs::remove(root / "calib2.jsonl");
  fs::create_symlink("/etc/passwd", root / "calib2.jsonl");
  auto worker = h.StartWorker("w1");
  for (const auto& [job, field] : {std::pair{*swapped_out, std::string("spec.output_dir")},
                                   std::pair{*swapped_calib, std::string("spec.calib_jsonl")}}) {
    ASSERT_TRUE(h.WaitForState(job.name(), v1::JOB_STATE_FAILED, absl::Seconds(20))) << field;
    auto failed = client->Get(job.name());
    EXPECT_EQ(failed->error().code(), static_cast<int>(absl::StatusCode::kInvalidArgument));
    EXPECT_NE(failed->error().message().find(field), std::string::npos)
        << failed->error().message();
    EXPECT_NE(failed->error().message().find("outside the allowed roots"), std::string::npos);
  }
  // Mid-run: the engine is writing when its output directory is swapped for a symlink out.
  auto running = client->Submit(RequestIn(root, "out3"));
  ASSERT_TRUE(running.ok()) << running.status();
  ASSERT_TRUE(h.WaitForState(running->name(), v1::JOB_STATE_RUNNING, absl::Seconds(20)));
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline && !fs::exists(root / "out3" / ".model.safetensors.quantd-tmp")) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  fs::rename(root / "out3", root / "out3.moved");
  fs::create_directory_symlink(outside, root / "out3");
  ASSERT_TRUE(h.WaitForState(running->name(), v1::JOB_STATE_FAILED, absl::Seconds(20)));
  EXPECT_NE(client->Get(running->name())->error().message().find("outside the allowed roots"),
            std::string::npos);
  // Nothing was written to, or removed from, the outside directory.
  std::vector<std::string> outside_files;
  for (const auto& entry : fs::directory_iterator(outside)) {
    outside_files.push_back(entry.path().filename().string());
  }
  EXPECT_EQ(outside_files, std::vector<std::string>{"config.json"});
}

TEST(SecurityIntegrationTest, BadInputIsRefusedNamingTheFieldAndTheServerKeepsServing) {
  ServiceHarness h(TestName());
  auto server = h.StartServer({"--max-labels-per-job=8"});
  ASSERT_GT(h.port(), 0) << ServerLog(h.dir());
  auto client = h.Client();
  const std::string model = h.MakeModel("m");
  struct Case {
    std::string name;
    std::function<void(v1::JobSpec*)> mutate;
    std::string field;
  };
  const std::string long_component = (h.dir() / std::string(300, 'c')).string();
  const std::string long_path = h.dir().string() + "/" + std::string(5000, 'p');
  const std::string outside_10k = "/outside/" + std::string(10000, 'x');
  std::vector<Case> cases = {
      {"a 300-byte path component", [&](v1::JobSpec* s) { s->set_output_dir(long_component); },
       "spec.output_dir"},
      {"a 5000-character path", [&](v1::JobSpec* s) { s->set_calib_jsonl(long_path); },
       "spec.calib_jsonl"},
      {"a 10 kB path outside the roots", [&](v1::JobSpec* s) { s->set_model_dir(outside_10k); },
       "spec.model_dir"},
      {"a 4 kB path outside the roots",
       [&](v1::JobSpec* s) { s->set_model_dir("/outside/" + std::string(4000, 'y')); },
       "spec.model_dir"},
      {"a 200 kB system prompt",
       [](v1::JobSpec* s) { s->set_system_prompt(std::string(200000, 'x')); },
       "spec.system_prompt"},
      {"non-UTF-8 bytes in a path",
       [&](v1::JobSpec* s) { s->set_calib_jsonl(h.dir().string() + "/\xff\xfe.jsonl"); },
       "spec.calib_jsonl"},
      {"too many labels",
       [](v1::JobSpec* s) {
         for (int i = 0; i < 9; ++i) (*s->mutable_labels())["k" + std::to_string(i)] = "v";
       },
       "spec.labels"},
  };
  for (const Case& c : cases) {
    v1::SubmitJobRequest request = h.Request(model, "out");
    c.mutate(request.mutable_spec());
    auto job = client->Submit(request);
    EXPECT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument) << c.name << job.status();
    EXPECT_NE(job.status().message().find(c.field), std::string::npos)
        << c.name << ": " << job.status();
    EXPECT_LT(job.status().message().size(), 1000u) << c.name;  // Echoed values are bounded.
  }
  CommandResult long_calib = h.Quantctl({"submit", "--model-dir", model, "--output-dir",
                                         (h.dir() / "o").string(), "--calib-jsonl", long_path});
  EXPECT_EQ(long_calib.exit_code, 2) << long_calib.err;
  EXPECT_NE(long_calib.err.find("INVALID_ARGUMENT: spec.calib_jsonl"), std::string::npos)
      << long_calib.err;
  CommandResult prompt =
      h.Quantctl({"submit", "--model-dir", model, "--output-dir", (h.dir() / "o").string(),
                  "--calib-jsonl", h.calib(), "--system-prompt", std::string(100000, 'y')});
  EXPECT_EQ(prompt.exit_code, 2) << prompt.err;
  EXPECT_NE(prompt.err.find("--max-system-prompt-bytes"), std::string::npos) << prompt.err;
  // Still serving, and nothing refused was stored.
  EXPECT_EQ(client->List({})->jobs_size(), 0);
  EXPECT_TRUE(client->Submit(h.Request(model, "out")).ok());
}

TEST(SecurityIntegrationTest, ALargeSystemPromptWithinTheLimitReachesTheEngineWhole) {
  ServiceHarness h(TestName());
  auto server = h.StartServer({"--max-system-prompt-bytes=300000"});
  ASSERT_GT(h.port(), 0) << ServerLog(h.dir());
  const fs::path record = h.dir() / "engine-options.log";
  setenv("FAKE_ENGINE_OPTIONS_LOG", record.c_str(), 1);  // Inherited by the worker's engine.
  auto worker = h.StartWorker("w1");
  unsetenv("FAKE_ENGINE_OPTIONS_LOG");
  auto client = h.Client();
  v1::SubmitJobRequest request = h.Request(h.MakeModel("m", R"({"steps": 2, "step_ms": 10})"), "o");
  request.mutable_spec()->set_system_prompt(std::string(200000, 'z'));
  auto job = client->Submit(request);
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_TRUE(h.WaitForState(job->name(), v1::JOB_STATE_SUCCEEDED, absl::Seconds(30)))
      << client->Get(job->name())->error().message();
  EXPECT_EQ(Slurp(record), "200000\n");  // Through stdin: no "Argument list too long".
}

TEST(SecurityIntegrationTest, QuotasAndTheRequestSizeAreResourceExhaustedNamingTheLimit) {
  ServiceHarness h(TestName());
  auto server = h.StartServer({"--max-queued-jobs-per-tenant=2", "--max-watchers-per-principal=1",
                               "--max-request-bytes=16384"});
  ASSERT_GT(h.port(), 0) << ServerLog(h.dir());
  auto client = h.Client();
  const std::string model = h.MakeModel("m");
  auto first = client->Submit(h.Request(model, "a"));
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(client->Submit(h.Request(model, "b")).ok());
  auto third = client->Submit(h.Request(model, "c"));
  EXPECT_EQ(third.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(third.status().message().find("--max-queued-jobs-per-tenant"), std::string::npos)
      << third.status();
  // One watcher holds the only slot (the job stays queued: no worker).
  auto watching = std::async(std::launch::async, [&] {
    auto watcher = h.Client();
    return watcher->Follow(first->name(), 0, [](const v1::JobEvent&) {});
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  auto second_watch = client->Follow(first->name(), 0, [](const v1::JobEvent&) {});
  EXPECT_EQ(second_watch.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(second_watch.message().find("--max-watchers-per-principal"), std::string::npos)
      << second_watch;
  v1::SubmitJobRequest big = h.Request(model, "d");
  big.mutable_spec()->set_system_prompt(std::string(20000, 'b'));
  EXPECT_EQ(client->Submit(big).status().code(), absl::StatusCode::kResourceExhausted);
  ASSERT_TRUE(client->Cancel(first->name()).ok());  // Ends the watch.
  EXPECT_TRUE(watching.get().ok());
}

TEST(SecurityIntegrationTest, ANonLoopbackAddressNeedsTlsAndAuthenticationOrInsecure) {
  ServiceHarness h(TestName());
  const std::string quantd = ServiceHarness::Binary("quantd");
  const std::vector<std::string> common = {
      quantd, "--listen=0.0.0.0:0", "--metrics-address=127.0.0.1:0",
      "--state-dir=" + (h.dir() / "state").string(), "--local-worker=false"};
  auto refused = ChildProcess::Start(common, {}, (h.dir() / "refused.log").string());
  EXPECT_EQ(refused->Wait(absl::Seconds(20)), 1);
  const std::string why = Slurp(h.dir() / "refused.log");
  EXPECT_NE(why.find("not a loopback address"), std::string::npos) << why;
  EXPECT_NE(why.find("--insecure"), std::string::npos) << why;

  // --insecure starts, and says so in every start-up line and in /readyz.
  std::vector<std::string> insecure = common;
  insecure.push_back("--insecure=true");
  insecure.push_back("--port-file=" + (h.dir() / "port").string());
  auto server = ChildProcess::Start(insecure, {}, (h.dir() / "insecure.log").string());
  for (int i = 0; i < 500 && !fs::exists(h.dir() / "port"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(fs::exists(h.dir() / "port")) << Slurp(h.dir() / "insecure.log");
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const std::string log = Slurp(h.dir() / "insecure.log");
  std::istringstream lines(log.substr(0, log.find("started insecurely")));
  int metrics_port = 0;
  for (std::string line; std::getline(lines, line);) {
    EXPECT_NE(line.find("INSECURE"), std::string::npos) << line;
    if (size_t at = line.find("metrics at http://127.0.0.1:"); at != std::string::npos) {
      metrics_port = std::atoi(line.c_str() + at + 28);
    }
  }
  EXPECT_NE(log.find("started insecurely"), std::string::npos) << log;
  ASSERT_GT(metrics_port, 0) << log;
  httplib::Client probe("127.0.0.1", metrics_port);
  auto ready = probe.Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);
  EXPECT_NE(ready->body.find("INSECURE"), std::string::npos) << ready->body;
  server->Signal(SIGTERM);
  EXPECT_EQ(server->Wait(absl::Seconds(20)), 0);
}

TEST(SecurityIntegrationTest, TlsWithClientCertificatesTokensTheLocalWorkerAndProtectedMetrics) {
  ServiceHarness h(TestName());
  Pki pki;
  ASSERT_TRUE(MakePki(h.dir() / "pki", &pki).ok()) << "the openssl command line is needed";
  const fs::path identities = h.dir() / "identities.json";
  WriteIdentities(identities, {{"alice", "", {"submitter"}, "", "alice-cert"},
                               {"prometheus", "", {"viewer"}, "scrape-token", ""}});
  // Every address, TLS, client certificates, tokens, the local worker, metrics over TLS + token.
  auto server = h.StartServer(
      {"--tls-cert=" + pki.server_cert, "--tls-key=" + pki.server_key, "--tls-client-ca=" + pki.ca,
       "--tls-ca=" + pki.ca, "--identities=" + identities.string(), "--metrics-tls=true",
       "--metrics-require-token=true", "--local-worker=true",
       "--engine=" + ServiceHarness::Binary("fake-quantize-awq")},
      0);
  ASSERT_GT(h.port(), 0) << ServerLog(h.dir());
  credentials::ClientTls alice_tls{pki.ca, pki.alice_cert, pki.alice_key, ""};
  auto alice = ClientWith(h.address(), "", alice_tls);
  auto job = alice->Submit(h.Request(h.MakeModel("m", R"({"steps": 2, "step_ms": 10})"), "out"));
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->owner(), "alice");  // Known by its certificate alone.
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline && alice->Get(job->name())->state() != v1::JOB_STATE_SUCCEEDED) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  auto done = alice->Get(job->name());
  EXPECT_EQ(done->state(), v1::JOB_STATE_SUCCEEDED) << done->error().message();
  EXPECT_EQ(done->worker(), "workers/local");  // The local worker got the CA and a credential.
  EXPECT_EQ(done->worker_principal(), "local-worker");
  // quantctl with the client certificate.
  CommandResult get = h.Quantctl({"--tls-ca", pki.ca, "--tls-cert", pki.alice_cert, "--tls-key",
                                  pki.alice_key, "get", job->job_id()});
  EXPECT_EQ(get.exit_code, 0) << get.err;
  // TLS but no credential: UNAUTHENTICATED; a certificate of another CA: no connection at all.
  auto nobody = ClientWith(h.address(), "", {pki.ca, "", "", ""});
  EXPECT_EQ(nobody->List({}).status().code(), absl::StatusCode::kUnauthenticated);
  auto rogue = ClientWith(h.address(), "", {pki.ca, pki.rogue_cert, pki.rogue_key, ""});
  EXPECT_EQ(rogue->List({}).status().code(), absl::StatusCode::kUnavailable);
  // /metrics over TLS needs the token; the probes do not.
  const std::string log = ServerLog(h.dir());
  size_t at = 0;
  std::unique_ptr<httplib::SSLClient> server_metrics = MetricsEndpointIn(log, 0, pki.ca, &at);
  ASSERT_NE(server_metrics, nullptr) << log;
  httplib::SSLClient& metrics = *server_metrics;
  auto denied = metrics.Get("/metrics");
  ASSERT_TRUE(denied) << httplib::to_string(denied.error());
  EXPECT_EQ(denied->status, 401);
  EXPECT_EQ(metrics.Get("/healthz")->status, 200);
  auto scraped = metrics.Get("/metrics", {{"Authorization", "Bearer scrape-token"}});
  ASSERT_TRUE(scraped);
  EXPECT_EQ(scraped->status, 200);
  EXPECT_NE(scraped->body.find("quantd_jobs_submitted_total"), std::string::npos);
  EXPECT_EQ(metrics.Get("/metrics", {{"Authorization", "Bearer wrong"}})->status, 401);
  // The local worker's probes are served over HTTPS too, with the server's certificate.
  std::unique_ptr<httplib::SSLClient> worker_probe = MetricsEndpointIn(log, at + 1, pki.ca, &at);
  ASSERT_NE(worker_probe, nullptr) << log;
  auto worker_ready = worker_probe->Get("/readyz");
  ASSERT_TRUE(worker_ready) << httplib::to_string(worker_ready.error());
  EXPECT_EQ(worker_ready->status, 200) << worker_ready->body;
}

TEST(SecurityIntegrationTest, SighupReloadsTheIdentitiesAndABrokenFileKeepsTheOldOnes) {
  ServiceHarness h(TestName());
  const fs::path identities = h.dir() / "identities.json";
  WriteIdentities(identities, {{"alice", "", {"viewer"}, "old-token", ""}});
  auto server = h.StartServer({"--identities=" + identities.string()});
  ASSERT_GT(h.port(), 0) << ServerLog(h.dir());
  EXPECT_TRUE(ClientWith(h.address(), "old-token")->List({}).ok());
  // Rotation: the new token is added and the old one removed, then SIGHUP.
  WriteIdentities(identities, {{"alice", "", {"viewer"}, "new-token", ""}});
  server->Signal(SIGHUP);
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline && !ClientWith(h.address(), "new-token")->List({}).ok()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(ClientWith(h.address(), "new-token")->List({}).ok());
  EXPECT_EQ(ClientWith(h.address(), "old-token")->List({}).status().code(),
            absl::StatusCode::kUnauthenticated);
  // A broken file is reported and changes nothing.
  std::ofstream(identities) << "{\"principals\": [{\"name\": \"x\", \"roles\": [\"king\"]}]}";
  server->Signal(SIGHUP);
  deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline &&
         ServerLog(h.dir()).find("identities not reloaded") == std::string::npos) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_NE(ServerLog(h.dir()).find("role \"king\" is not one of"), std::string::npos);
  EXPECT_TRUE(ClientWith(h.address(), "new-token")->List({}).ok());
}

TEST(SecurityIntegrationTest, WithoutRootsConfiguredJobsStayBeneathTheStateDirectory) {
  ServiceHarness h(TestName());
  const fs::path state = h.dir() / "state";
  const std::string quantd = ServiceHarness::Binary("quantd");
  auto server = ChildProcess::Start(
      {quantd, "--listen=127.0.0.1:0", "--port-file=" + (h.dir() / "port").string(),
       "--metrics-address=127.0.0.1:0", "--state-dir=" + state.string(), "--local-worker=false"},
      {}, (h.dir() / "quantd-0.log").string());
  for (int i = 0; i < 500 && !fs::exists(h.dir() / "port"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  int port = 0;
  std::ifstream(h.dir() / "port") >> port;
  ASSERT_GT(port, 0) << ServerLog(h.dir());
  auto client = ClientWith("127.0.0.1:" + std::to_string(port), "");
  // Anywhere else (the test directory, /tmp) is refused; the default root exists and works.
  auto outside = client->Submit(h.Request(h.MakeModel("m"), "out"));
  EXPECT_EQ(outside.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(outside.status().message().find((state / "data" / "default").string()),
            std::string::npos)
      << outside.status();
  ASSERT_TRUE(fs::is_directory(state / "data" / "default"));
  Populate(h, state / "data" / "default");
  auto inside = client->Submit(RequestIn(state / "data" / "default", "out"));
  EXPECT_TRUE(inside.ok()) << inside.status();
}

}  // namespace
}  // namespace quantd::testing
