#include "service_harness.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <thread>

namespace quantd::testing {
namespace fs = std::filesystem;

std::unique_ptr<ChildProcess> ChildProcess::Start(const std::vector<std::string>& argv,
                                                  const std::map<std::string, std::string>& env,
                                                  const std::string& log_path) {
  std::vector<std::string> args = argv;
  std::vector<char*> cargs;
  for (std::string& a : args) cargs.push_back(a.data());
  cargs.push_back(nullptr);
  auto child = std::make_unique<ChildProcess>();
  child->pid_ = fork();
  if (child->pid_ == 0) {
    int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    dup2(log, 1);
    dup2(log, 2);
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    execv(cargs[0], cargs.data());
    _exit(127);
  }
  return child;
}

ChildProcess::~ChildProcess() {
  if (!reaped_ && pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, &status_, 0);
  }
}

void ChildProcess::Signal(int signal_number) {
  if (!reaped_) kill(pid_, signal_number);
}

int ChildProcess::Wait(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!reaped_) {
    pid_t r = waitpid(pid_, &status_, WNOHANG);
    if (r == pid_) {
      reaped_ = true;
      break;
    }
    if (absl::Now() > deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return WIFEXITED(status_) ? WEXITSTATUS(status_) : 128 + WTERMSIG(status_);
}

ServiceHarness::ServiceHarness(const std::string& test_name) {
  dir_ = fs::temp_directory_path() / ("quantd-it-" + test_name + "-" + std::to_string(getpid()));
  fs::remove_all(dir_);
  fs::create_directories(dir_);
  std::ofstream calib(dir_ / "calib.jsonl");
  for (int i = 0; i < 20; ++i) calib << "{\"text\": \"calibration text " << i << "\"}\n";
}

ServiceHarness::~ServiceHarness() {
  if (!::testing::Test::HasFailure()) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

std::string ServiceHarness::Binary(const std::string& name) {
  return std::string(QUANTD_BINARY_DIR) + "/bin/" + name;
}

std::unique_ptr<ChildProcess> ServiceHarness::StartServer(const std::vector<std::string>& extra,
                                                          int port) {
  const fs::path port_file = dir_ / "port";
  fs::remove(port_file);
  std::vector<std::string> argv = {Binary("quantd"),
                                   "--listen=127.0.0.1:" + std::to_string(port),
                                   "--port-file=" + port_file.string(),
                                   "--metrics-address=127.0.0.1:0",  // Tests run side by side.
                                   "--state-dir=" + (dir_ / "state").string(),
                                   "--local-worker=false",
                                   "--heartbeat-seconds=0.2",
                                   "--lease-seconds=2",
                                   "--log-level=debug"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  if (std::none_of(extra.begin(), extra.end(),
                   [](const std::string& a) { return a.rfind("--allowed-roots", 0) == 0; })) {
    argv.push_back("--allowed-roots=" + dir_.string());  // Jobs use files of the test directory.
  }
  auto server =
      ChildProcess::Start(argv, {{"FAKE_ENGINE_RUN_LOG", RunLog()}},
                          (dir_ / ("quantd-" + std::to_string(log_counter_++) + ".log")).string());
  for (int i = 0; i < 500 && !fs::exists(port_file); ++i) {
    if (server->Wait(absl::Milliseconds(20)) >= 0) break;  // Died.
  }
  std::ifstream in(port_file);
  in >> port_;
  return server;
}

std::unique_ptr<ChildProcess> ServiceHarness::StartWorker(const std::string& worker_id,
                                                          const std::vector<std::string>& extra) {
  std::vector<std::string> argv = {Binary("quantd-worker"),
                                   "--server=" + address(),
                                   "--worker-id=" + worker_id,
                                   "--engine=" + Binary("fake-quantize-awq"),
                                   "--no-gpus",
                                   "--metrics-address=127.0.0.1:0",
                                   "--max-backoff-seconds=0.5",
                                   "--cancel-grace-seconds=2",
                                   "--log-level=debug"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return ChildProcess::Start(
      argv, {{"FAKE_ENGINE_RUN_LOG", RunLog()}},
      (dir_ / ("worker-" + worker_id + "-" + std::to_string(log_counter_++) + ".log")).string());
}

std::string ServiceHarness::MakeModel(const std::string& name,
                                      const std::string& fake_engine_json) {
  const fs::path model = dir_ / name;
  fs::create_directories(model);
  std::ofstream(model / "config.json")
      << R"({"architectures": ["Qwen2ForCausalLM"], "hidden_size": 64, "intermediate_size": 128,)"
      << R"( "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2,)"
      << R"( "vocab_size": 1000})";
  if (!fake_engine_json.empty()) std::ofstream(model / "fake_engine.json") << fake_engine_json;
  return model.string();
}

int ServiceHarness::RunsOf(const std::string& output_dir) const {
  std::ifstream in(RunLog());
  std::string dir, pid;
  int runs = 0;
  while (in >> dir >> pid) runs += dir == output_dir;
  return runs;
}

v1::SubmitJobRequest ServiceHarness::Request(const std::string& model_dir,
                                             const std::string& output_name) {
  v1::SubmitJobRequest request;
  request.mutable_spec()->set_model_dir(model_dir);
  request.mutable_spec()->set_output_dir((dir_ / output_name).string());
  request.mutable_spec()->set_calib_jsonl(calib());
  return request;
}

std::unique_ptr<client::QuantdClient> ServiceHarness::Client() const {
  client::ClientOptions options;
  options.address = address();
  options.rpc_timeout = absl::Seconds(10);
  options.max_backoff = absl::Milliseconds(500);
  return std::move(*client::QuantdClient::Connect(options));
}

bool ServiceHarness::WaitForState(const std::string& name, v1::JobState state,
                                  absl::Duration timeout) const {
  auto client = Client();
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    auto job = client->Get(name);
    if (job.ok() && job->state() == state) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

CommandResult ServiceHarness::Quantctl(const std::vector<std::string>& args,
                                       absl::Duration timeout) const {
  const std::string out_path = (dir_ / "quantctl.out").string();
  const std::string err_path = (dir_ / "quantctl.err").string();
  std::vector<std::string> argv = {Binary("quantctl"), "--address=" + address()};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> cargs;
  for (std::string& a : argv) cargs.push_back(a.data());
  cargs.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(out, 1);
    dup2(err, 2);
    execv(cargs[0], cargs.data());
    _exit(127);
  }
  CommandResult result;
  const absl::Time deadline = absl::Now() + timeout;
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (absl::Now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  std::stringstream out, err;
  out << std::ifstream(out_path).rdbuf();
  err << std::ifstream(err_path).rdbuf();
  result.out = out.str();
  result.err = err.str();
  return result;
}

std::vector<v1::JobEvent> AllEvents(client::QuantdClient& client, const std::string& name) {
  std::vector<v1::JobEvent> events;
  auto job = client.Get(name);
  if (!job.ok() || job->last_event_sequence() == 0) return events;
  (void)client.Follow(
      name, 0, [&](const v1::JobEvent& e) { events.push_back(e); }, job->last_event_sequence());
  return events;
}

bool Contiguous(const std::vector<v1::JobEvent>& events) {
  for (size_t i = 0; i < events.size(); ++i) {
    if (events[i].sequence() != static_cast<int64_t>(i) + 1) return false;
  }
  return true;
}

}  // namespace quantd::testing
