// A child process for integration tests: started with its output in a log file, stopped with
// SIGTERM (then SIGKILL) when the object goes away, so a failing test leaves nothing running.
#ifndef QUANTD_TESTS_OPS_TESTING_CHILD_PROCESS_H_
#define QUANTD_TESTS_OPS_TESTING_CHILD_PROCESS_H_

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace quantd::testing {

class ChildProcess {
 public:
  // Runs argv[0] (a path) with stdout and stderr appended to `log_path`.
  static absl::StatusOr<ChildProcess> Start(const std::vector<std::string>& argv,
                                            const std::string& log_path);
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) = delete;
  ChildProcess(const ChildProcess&) = delete;
  ~ChildProcess();

  bool Running();
  // Waits up to `timeout_ms` for the process to exit; its wait status, or nullopt if it still runs.
  std::optional<int> WaitExit(int timeout_ms);
  // SIGTERM, up to `grace_ms` to exit, then SIGKILL; returns the wait status.
  int Stop(int grace_ms = 5000);
  const std::string& log_path() const { return log_path_; }
  std::string ReadLog() const;

 private:
  ChildProcess(pid_t pid, std::string log_path) : pid_(pid), log_path_(std::move(log_path)) {}
  pid_t pid_;
  std::string log_path_;
};

// A TCP port on 127.0.0.1 that was free a moment ago (for programs that cannot report theirs).
absl::StatusOr<int> PickFreeLoopbackPort();

// Makes a fresh directory under $TMPDIR (or /tmp) and removes it with everything in it on exit.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace quantd::testing

#endif  // QUANTD_TESTS_OPS_TESTING_CHILD_PROCESS_H_
