// Durable progress with real processes: the CPU engine quantizing tiny-qwen2-wp (demo/models) is
// killed with SIGKILL during a layer — the engine alone, its worker, or the server that started
// it — and the next attempt resumes at the first unfinished layer (the engine's log and the
// worker's say so, as job events), writing a checkpoint whose sha256 equals an uninterrupted
// run's. quantize-awq on its own continues an interrupted run into the same --output_dir, and
// starts over, saying why, when the calibration file or an option changed. The scheduler places
// the seed-scale calibration on a GPU the old estimate refused, and a job that no worker's GPU can
// hold waits with its reason (quantctl get, /metrics) and fails after --unplaceable-timeout; the
// seed-scale calibration file runs on a CPU worker.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "file_digest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "quantd/v1/worker_service.grpc.pb.h"
#include "service_harness.h"

namespace quantd::testing {
namespace {

namespace fs = std::filesystem;

const fs::path kTinyModel = fs::path(QUANTD_SOURCE_DIR) / "demo/models/tiny-qwen2-wp";
const fs::path kConfigs = fs::path(QUANTD_SOURCE_DIR) / "tests/data/configs";

std::string TestName() { return ::testing::UnitTest::GetInstance()->current_test_info()->name(); }

// Finished layers recorded in output_dir's resume journal (its complete lines but the header).
int JournalLayers(const fs::path& out) {
  std::ifstream in(out / ".resume.quantd-tmp");
  std::stringstream s;
  s << in.rdbuf();
  const std::string text = s.str();
  const int lines = static_cast<int>(std::count(text.begin(), text.end(), '\n'));
  return std::max(0, lines - 1);
}

bool WaitForJournal(const fs::path& out, int layers, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (JournalLayers(out) >= layers) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// The pid of the quantize-awq process whose parent is `parent`, or -1.
pid_t EngineChildOf(pid_t parent) {
  for (const fs::directory_entry& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
    std::ifstream in(e.path() / "stat");
    std::string stat;
    std::getline(in, stat);
    const size_t open = stat.find('('), close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 2));
    std::string state;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (stat.substr(open + 1, close - open - 1) == "quantize-awq" && ppid == parent) {
      return static_cast<pid_t>(std::stoi(name));
    }
  }
  return -1;
}

// Eight calibration texts of the demo model, without chat template, 512-token blocks: 4 layers
// of a few seconds each on the CPU.
class ResumeHarness : public ServiceHarness {
 public:
  explicit ResumeHarness(const std::string& name) : ServiceHarness(name) {
    std::ifstream in(kTinyModel / "calib.jsonl");
    std::ofstream out(calib8());
    std::string line;
    for (int i = 0; i < 8 && std::getline(in, line); ++i) out << line << "\n";
  }
  std::string calib8() const { return (dir() / "calib8.jsonl").string(); }
  std::string model() const { return fs::canonical(kTinyModel / "model").string(); }
  // The model's directory and the test's own (calibration file, outputs): every path of a job
  // must lie beneath the roots (issue 15), the output directory too.
  std::string roots() const {
    return "--allowed-roots=" + fs::canonical(kTinyModel).string() + "," +
           fs::canonical(dir()).string();
  }
  v1::SubmitJobRequest TinyRequest(const std::string& output_name) {
    v1::SubmitJobRequest r;
    r.mutable_spec()->set_model_dir(model());
    r.mutable_spec()->set_output_dir((dir() / output_name).string());
    r.mutable_spec()->set_calib_jsonl(calib8());
    r.mutable_spec()->set_num_calib(8);
    r.mutable_spec()->set_max_seq_len(512);
    r.mutable_spec()->set_apply_chat_template(false);
    return r;
  }
  // quantize-awq run on its own with the flags the worker passes for TinyRequest.
  std::vector<std::string> EngineCommand(const fs::path& out,
                                         const std::vector<std::string>& extra = {}) const {
    std::vector<std::string> argv = {Binary("quantize-awq"),
                                     "--model_dir",
                                     model(),
                                     "--output_dir",
                                     out.string(),
                                     "--calib_jsonl",
                                     calib8(),
                                     "--num_calib",
                                     "8",
                                     "--max_seq_len",
                                     "512",
                                     "--group_size",
                                     "128",
                                     "--no_chat_template",
                                     "--seed",
                                     "42",
                                     "--dtype",
                                     "float16",
                                     "--modules_to_not_convert",
                                     "lm_head",
                                     "--backend",
                                     "cpu"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  }
  // The uninterrupted run's model.safetensors sha256.
  std::string ReferenceSha() {
    const fs::path out = dir() / "reference";
    auto run = ChildProcess::Start(EngineCommand(out), {}, (dir() / "reference.log").string());
    EXPECT_EQ(run->Wait(absl::Seconds(600)), 0);
    return worker::Sha256File((out / "model.safetensors").string()).value_or("none");
  }
  // quantd and a worker "w1" running the real engine, and the tiny job submitted to them; waits
  // until the job's first two layers are kept. Returns the job's name.
  std::string RunUntilTwoLayersAreKept() {
    server = StartServer({roots()});
    worker = StartWorker("w1", {"--engine=" + Binary("quantize-awq")});
    absl::StatusOr<v1::Job> job = Client()->Submit(TinyRequest("out"));
    EXPECT_TRUE(job.ok()) << job.status();
    EXPECT_TRUE(WaitForJournal(dir() / "out", 2, absl::Seconds(600)));
    return job.ok() ? job->name() : "";
  }
  std::unique_ptr<ChildProcess> server, worker;

  std::string ReadLog(const std::string& name) const {
    std::stringstream s;
    s << std::ifstream(dir() / name).rdbuf();
    return s.str();
  }
};

std::string ArtifactSha(const v1::Job& job, const std::string& file) {
  for (const v1::Artifact& a : job.artifacts()) {
    if (fs::path(a.path()).filename() == file) return a.sha256();
  }
  return "missing";
}

// The job's log lines that contain `text`.
int LogsWith(const std::vector<v1::JobEvent>& events, const std::string& text) {
  int n = 0;
  for (const v1::JobEvent& e : events)
    n += e.has_log() && absl::StrContains(e.log().message(), text);
  return n;
}

// Checks the job finished after a lost attempt, resumed at `at_least` or later layer, with the
// reference checkpoint; returns the layer it resumed at.
int ExpectResumedWithTheReferenceCheckpoint(ResumeHarness& h, const std::string& name, int at_least,
                                            const std::string& reference) {
  auto client = h.Client();
  EXPECT_TRUE(h.WaitForState(name, v1::JOB_STATE_SUCCEEDED, absl::Seconds(600)));
  absl::StatusOr<v1::Job> job = client->Get(name);
  EXPECT_TRUE(job.ok());
  if (!job.ok()) return -1;
  EXPECT_EQ(job->attempt(), 2);
  const int resumed = job->progress().resumed_at_layer();
  EXPECT_GE(resumed, at_least);
  EXPECT_LT(resumed, 4);
  const std::vector<v1::JobEvent> events = AllEvents(*client, name);
  EXPECT_TRUE(Contiguous(events));
  const std::string at = absl::StrCat("resumed at layer ", resumed, " of 4");
  EXPECT_EQ(LogsWith(events, at), 2) << "the engine's line and the worker's";
  EXPECT_EQ(ArtifactSha(*job, "model.safetensors"), reference);
  for (const fs::directory_entry& e : fs::directory_iterator(h.dir() / "out")) {
    EXPECT_FALSE(absl::EndsWith(e.path().string(), ".quantd-tmp")) << e.path();
  }
  return resumed;
}

TEST(ResumeIntegrationTest, AnEngineKilledDuringALayerIsResumedThereWithTheSameCheckpoint) {
  ResumeHarness h(TestName());
  const std::string reference = h.ReferenceSha();
  const std::string job = h.RunUntilTwoLayersAreKept();
  const pid_t engine = EngineChildOf(h.worker->pid());
  ASSERT_GT(engine, 0);
  ::kill(engine, SIGKILL);  // during layer 2 (or later: the journal says which)
  const int finished = [&] {
    for (int i = 0; i < 500 && ::kill(engine, 0) == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return JournalLayers(h.dir() / "out");
  }();
  const int resumed = ExpectResumedWithTheReferenceCheckpoint(h, job, 2, reference);
  EXPECT_EQ(resumed, finished);  // nothing finished is redone, nothing unfinished is skipped
  bool requeued = false;
  for (const v1::JobEvent& e : AllEvents(*h.Client(), job)) {
    requeued |= e.has_state_change() && e.state_change().state() == v1::JOB_STATE_QUEUED &&
                absl::StrContains(e.state_change().error().message(), "signal 9");
  }
  EXPECT_TRUE(requeued);
}

TEST(ResumeIntegrationTest, AWorkerKilledDuringALayerIsResumedOnTheNextAttempt) {
  ResumeHarness h(TestName());
  const std::string reference = h.ReferenceSha();
  const std::string job = h.RunUntilTwoLayersAreKept();
  h.worker->Signal(SIGKILL);  // its engine gets SIGTERM (PR_SET_PDEATHSIG) and keeps its layers
  h.worker->Wait(absl::Seconds(5));
  auto again = h.StartWorker("w1", {"--engine=" + h.Binary("quantize-awq")});
  ExpectResumedWithTheReferenceCheckpoint(h, job, 2, reference);
}

TEST(ResumeIntegrationTest, AServerRestartedWithItsLocalWorkerResumesTheRunningJob) {
  ResumeHarness h(TestName());
  const std::string reference = h.ReferenceSha();
  const std::vector<std::string> flags = {h.roots(), "--local-worker=true",
                                          "--engine=" + h.Binary("quantize-awq")};
  auto server = h.StartServer(flags);
  const int port = h.port();
  auto client = h.Client();
  auto job = client->Submit(h.TinyRequest("out"));
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_TRUE(WaitForJournal(h.dir() / "out", 2, absl::Seconds(600)));
  server->Signal(SIGKILL);  // the local worker dies with it, and stops its engine
  server->Wait(absl::Seconds(5));
  auto restarted = h.StartServer(flags, port);
  ASSERT_EQ(h.port(), port);
  ExpectResumedWithTheReferenceCheckpoint(h, job->name(), 2, reference);
}

TEST(ResumeIntegrationTest, QuantizeAwqContinuesIntoTheSameOutputDirOrStartsOverSayingWhy) {
  ResumeHarness h(TestName());
  const std::string reference = h.ReferenceSha();
  const fs::path out = h.dir() / "out";
  // Runs quantize-awq with `extra` flags, killing it (SIGKILL) once `kill_after` layers are kept;
  // returns its log.
  int runs = 0;
  auto run = [&](const std::vector<std::string>& extra, int kill_after) {
    const std::string log = absl::StrCat("cli-", runs++, ".log");
    auto p = ChildProcess::Start(h.EngineCommand(out, extra), {}, (h.dir() / log).string());
    if (kill_after > 0) {
      EXPECT_TRUE(WaitForJournal(out, kill_after, absl::Seconds(600)));
      p->Signal(SIGKILL);
      EXPECT_EQ(p->Wait(absl::Seconds(10)), 128 + SIGKILL);
    } else {
      EXPECT_EQ(p->Wait(absl::Seconds(600)), 0) << h.ReadLog(log);
    }
    return h.ReadLog(log);
  };
  run({}, 1);
  std::string log = run({}, 0);
  EXPECT_TRUE(absl::StrContains(log, "resuming an interrupted run")) << log;
  EXPECT_TRUE(std::regex_search(log, std::regex("resumed at layer [1-3] of 4"))) << log;
  EXPECT_EQ(worker::Sha256File((out / "model.safetensors").string()).value_or(""), reference);

  // The calibration file changed between the attempts.
  fs::remove_all(out);
  run({}, 1);
  {
    std::ifstream in(kTinyModel / "calib.jsonl");
    std::ofstream calib(h.calib8());
    std::string line;
    for (int i = 0; i < 16 && std::getline(in, line); ++i) {
      if (i >= 8) calib << line << "\n";
    }
  }
  log = run({}, 0);
  EXPECT_TRUE(absl::StrContains(log, "starting over")) << log;
  EXPECT_TRUE(absl::StrContains(log, "the calibration token blocks differ")) << log;
  EXPECT_FALSE(absl::StrContains(log, "resumed at layer")) << log;

  // An option changed between the attempts.
  fs::remove_all(out);
  run({}, 1);
  log = run({"--group_size", "64"}, 0);
  EXPECT_TRUE(absl::StrContains(log, "the option group_size differs (was 128, now 64)")) << log;
  EXPECT_FALSE(absl::StrContains(log, "resumed at layer")) << log;
}

// A worker that advertises GPUs over the WorkerService protocol and runs nothing: what the
// scheduler sees of a GPU machine, on a machine without one.
class AdvertisedGpuWorker {
 public:
  AdvertisedGpuWorker(const std::string& address, const std::string& id, int64_t gpu_bytes) {
    stub_ = v1::WorkerService::NewStub(
        grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
    stream_ = stub_->Connect(&context_);
    v1::WorkerMessage hello;
    hello.mutable_hello()->set_worker_id(id);
    hello.mutable_hello()->set_host("test");
    hello.mutable_hello()->set_version("test");
    hello.mutable_hello()->set_capacity(1);
    v1::Gpu* gpu = hello.mutable_hello()->add_gpus();
    gpu->set_index(0);
    gpu->set_name("advertised GPU");
    gpu->set_memory_bytes(gpu_bytes);
    v1::ServerMessage reply;
    connected_ = stream_->Write(hello) && stream_->Read(&reply) && reply.has_hello();
    reader_ = std::thread([this] {
      v1::ServerMessage m;
      while (stream_->Read(&m)) {
        std::lock_guard<std::mutex> lock(mu_);
        if (m.has_assignment()) assignments_.push_back(m.assignment());
      }
    });
    heartbeat_ = std::thread([this] {
      while (!stop_) {
        v1::WorkerMessage beat;
        (*beat.mutable_heartbeat()->mutable_gpu_memory_used_bytes())[0] = 512 << 20;
        if (!stream_->Write(beat)) break;
        for (int i = 0; i < 20 && !stop_; ++i) {
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
      }
    });
  }
  ~AdvertisedGpuWorker() {
    stop_ = true;
    heartbeat_.join();
    context_.TryCancel();
    reader_.join();
  }
  bool connected() const { return connected_; }
  std::vector<v1::JobAssignment> assignments() {
    std::lock_guard<std::mutex> lock(mu_);
    return assignments_;
  }

 private:
  grpc::ClientContext context_;
  std::unique_ptr<v1::WorkerService::Stub> stub_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::WorkerMessage, v1::ServerMessage>> stream_;
  bool connected_ = false;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<v1::JobAssignment> assignments_;
  std::thread reader_, heartbeat_;
};

// A job for a model of which only config.json exists (no worker here runs it).
v1::SubmitJobRequest ConfigOnlyJob(const ServiceHarness& h, const std::string& config,
                                   const std::string& calib) {
  const fs::path model = h.dir() / "model";
  fs::create_directories(model);
  fs::copy_file(kConfigs / config, model / "config.json");
  v1::SubmitJobRequest request;
  request.mutable_spec()->set_model_dir(model.string());
  request.mutable_spec()->set_output_dir((h.dir() / "out").string());
  request.mutable_spec()->set_calib_jsonl(calib);
  return request;
}

// An 8 MB calibration file of 8192 texts: the seed's calib_8192.jsonl in size (texts of the demo
// model's calibration, cut to varied lengths).
std::string SeedScaleCalibration(const ServiceHarness& h) {
  std::vector<std::string> texts;
  std::ifstream in(kTinyModel / "calib.jsonl");
  std::string line;
  while (std::getline(in, line)) texts.push_back(nlohmann::json::parse(line)["text"]);
  const fs::path path = h.dir() / "calib_8192.jsonl";
  std::ofstream out(path);
  std::mt19937 rng(8192);
  for (int i = 0; i < 8192; ++i) {
    std::string t;
    const size_t want = 200 + rng() % 1600;
    while (t.size() < want) t += texts[rng() % texts.size()] + " ";
    out << nlohmann::json({{"text", t.substr(0, want)}}).dump() << "\n";
  }
  out.close();
  EXPECT_GT(fs::file_size(path), 7'500'000u);
  return path.string();
}

TEST(ResumeIntegrationTest, TheSeedScaleCalibrationOfASmallModelIsPlacedOnAGpu) {
  ServiceHarness h(TestName());
  auto server = h.StartServer();
  AdvertisedGpuWorker gpu(h.address(), "gpu80", int64_t{80} << 30);
  ASSERT_TRUE(gpu.connected());
  auto client = h.Client();
  // 8192 texts, blocks of 2048 tokens (the defaults)
  auto job = client->Submit(
      ConfigOnlyJob(h, "qwen2.5-0.5b-instruct.config.json", SeedScaleCalibration(h)));
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_LT(job->min_gpu_memory_bytes(), int64_t{8} << 30);
  ASSERT_TRUE(h.WaitForState(job->name(), v1::JOB_STATE_ASSIGNED, absl::Seconds(20)));
  auto placed = client->Get(job->name());
  EXPECT_EQ(placed->worker(), "workers/gpu80");
  EXPECT_EQ(placed->gpu_index(), 0);
  EXPECT_LE(placed->estimated_gpu_memory_bytes(), int64_t{80} << 30);  // the plan, chunked
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ASSERT_EQ(gpu.assignments().size(), 1u);
  EXPECT_EQ(gpu.assignments()[0].spec().max_seq_len(), 2048);
  EXPECT_EQ(gpu.assignments()[0].spec().num_calib(), 8192);
}

// The 8 MB calibration file through quantd and a CPU worker running the real engine on
// tiny-qwen2-wp: the job is placed and succeeds, the engine sampling 8 of the file's 8192 texts
// (num_calib). The whole seed scale (every text, 2048-token blocks) takes hours on a CPU (16 texts
// took 140 s a layer on the development VM): calibration_seed_scale_test builds its blocks on the
// CPU, the test above places its plan, docs/perf.md times it on the H200.
TEST(ResumeIntegrationTest, TheSeedScaleCalibrationFileRunsOnACpuWorker) {
  ResumeHarness h(TestName());
  h.server = h.StartServer({h.roots()});
  h.worker = h.StartWorker("cpu", {"--engine=" + h.Binary("quantize-awq")});
  v1::SubmitJobRequest request = h.TinyRequest("out");
  request.mutable_spec()->set_calib_jsonl(SeedScaleCalibration(h));
  auto client = h.Client();
  auto job = client->Submit(request);
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_TRUE(h.WaitForState(job->name(), v1::JOB_STATE_SUCCEEDED, absl::Seconds(600)));
  auto done = client->Get(job->name());
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->worker(), "workers/cpu");
  EXPECT_EQ(done->gpu_index(), -1);
  EXPECT_NE(ArtifactSha(*done, "model.safetensors"), "missing");
  const std::vector<v1::JobEvent> events = AllEvents(*client, job->name());
  EXPECT_EQ(LogsWith(events, "8 sampled of 8192 valid rows"), 1);
}

// The server's /metrics URL, from its log ("metrics at http://HOST:PORT/metrics").
std::string MetricsText(const ServiceHarness& h) {
  for (const fs::directory_entry& e : fs::directory_iterator(h.dir())) {
    if (!absl::StartsWith(e.path().filename().string(), "quantd-")) continue;
    std::stringstream s;
    s << std::ifstream(e.path()).rdbuf();
    std::smatch m;
    const std::string log = s.str();
    if (!std::regex_search(log, m, std::regex("metrics at http://([0-9.]+):([0-9]+)/metrics"))) {
      continue;
    }
    httplib::Client http(m[1].str(), std::stoi(m[2].str()));
    auto response = http.Get("/metrics");
    if (response && response->status == 200) return response->body;
  }
  return "";
}

TEST(ResumeIntegrationTest, AJobNoWorkerCanHoldWaitsWithItsReasonThenFailsNamingTheGpuItNeeds) {
  ServiceHarness h(TestName());
  auto server = h.StartServer({"--unplaceable-timeout-seconds=4"});
  AdvertisedGpuWorker gpu(h.address(), "gpu8", int64_t{6} << 30);
  ASSERT_TRUE(gpu.connected());
  v1::SubmitJobRequest request = ConfigOnlyJob(h, "qwen2.5-7b-instruct.config.json", h.calib());
  request.mutable_spec()->set_max_seq_len(2048);
  auto client = h.Client();
  auto job = client->Submit(request);
  ASSERT_TRUE(job.ok()) << job.status();
  const double needs_gib = static_cast<double>(job->min_gpu_memory_bytes()) / (1 << 30);
  EXPECT_GT(needs_gib, 6.0);
  // Queued, with the reason where users and operators look.
  absl::StatusOr<v1::Job> queued;
  for (int i = 0; i < 100; ++i) {
    queued = client->Get(job->name());
    if (queued.ok() && queued->queue_reason() == v1::QUEUE_REASON_GPU_TOO_SMALL) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(queued->queue_reason(), v1::QUEUE_REASON_GPU_TOO_SMALL);
  EXPECT_EQ(queued->state(), v1::JOB_STATE_QUEUED);
  const std::string needs = absl::StrFormat("%.1f GiB", needs_gib);
  EXPECT_TRUE(absl::StrContains(queued->queue_message(), needs)) << queued->queue_message();
  CommandResult get = h.Quantctl({"get", job->name()});
  EXPECT_EQ(get.exit_code, 0) << get.err;
  EXPECT_TRUE(absl::StrContains(get.out, "waiting:  gpu_too_small")) << get.out;
  EXPECT_TRUE(absl::StrContains(get.out, "the largest connected GPU has 6.0 GiB")) << get.out;
  EXPECT_TRUE(absl::StrContains(MetricsText(h), "quantd_queued_jobs{reason=\"gpu_too_small\"} 1"));
  // Then it fails, naming the smallest GPU it needs.
  ASSERT_TRUE(h.WaitForState(job->name(), v1::JOB_STATE_FAILED, absl::Seconds(10)));
  auto failed = client->Get(job->name());
  EXPECT_EQ(failed->error().code(), static_cast<int32_t>(absl::StatusCode::kResourceExhausted));
  EXPECT_TRUE(absl::StrContains(failed->error().message(), needs)) << failed->error().message();
  EXPECT_TRUE(gpu.assignments().empty());
}

}  // namespace
}  // namespace quantd::testing
