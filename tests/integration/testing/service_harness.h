// Real quantd, quantd-worker and quantctl processes on loopback, for the integration tests: a temp
// directory per test, free ports (port 0 + --port-file), the fake engine, and helpers to wait with
// a bound on every wait.
#ifndef QUANTD_TESTS_INTEGRATION_TESTING_SERVICE_HARNESS_H_
#define QUANTD_TESTS_INTEGRATION_TESTING_SERVICE_HARNESS_H_

#include <sys/types.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "quantd_client.h"

namespace quantd::testing {

// A child process; killed with SIGKILL when destroyed if still running.
class ChildProcess {
 public:
  static std::unique_ptr<ChildProcess> Start(const std::vector<std::string>& argv,
                                             const std::map<std::string, std::string>& env,
                                             const std::string& log_path);
  ~ChildProcess();
  void Signal(int signal_number);
  // Exit code (or 128 + signal), or -1 if still running after `timeout`.
  int Wait(absl::Duration timeout);
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  int status_ = 0;
};

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

class ServiceHarness {
 public:
  explicit ServiceHarness(const std::string& test_name);
  ~ServiceHarness();

  const std::filesystem::path& dir() const { return dir_; }
  static std::string Binary(const std::string& name);

  // Starts quantd with a SQLite store in dir()/state (kept across restarts), no local worker unless
  // the args ask for one, short leases, dir() as the allowed root unless the args name roots;
  // waits until it serves. port 0 = any free port.
  std::unique_ptr<ChildProcess> StartServer(const std::vector<std::string>& extra_args = {},
                                            int port = 0);
  std::unique_ptr<ChildProcess> StartWorker(const std::string& worker_id,
                                            const std::vector<std::string>& extra_args = {});
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }

  // A model directory with a config.json and, when given, fake_engine.json behaviour.
  std::string MakeModel(const std::string& name, const std::string& fake_engine_json = "");
  std::string calib() const { return (dir_ / "calib.jsonl").string(); }
  std::string RunLog() const { return (dir_ / "engine-runs.log").string(); }
  // Lines of the fake engine's run log naming output_dir (how many times a job's engine ran).
  int RunsOf(const std::string& output_dir) const;

  v1::SubmitJobRequest Request(const std::string& model_dir, const std::string& output_name);
  std::unique_ptr<client::QuantdClient> Client() const;
  // Polls GetJob until the state is reached (true) or the timeout passes (false).
  bool WaitForState(const std::string& name, v1::JobState state, absl::Duration timeout) const;
  // Runs quantctl with --address and `args` to completion (bounded by `timeout`).
  CommandResult Quantctl(const std::vector<std::string>& args,
                         absl::Duration timeout = absl::Seconds(60)) const;

 private:
  std::filesystem::path dir_;
  int port_ = 0;
  int log_counter_ = 0;
};

// All events of a job, from the server.
std::vector<v1::JobEvent> AllEvents(client::QuantdClient& client, const std::string& name);
// True when the sequences are 1, 2, ..., n.
bool Contiguous(const std::vector<v1::JobEvent>& events);

}  // namespace quantd::testing

#endif  // QUANTD_TESTS_INTEGRATION_TESTING_SERVICE_HARNESS_H_
