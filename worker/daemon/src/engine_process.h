// EngineProcess: one job's quantize-awq child process. Starts it as
// `quantize-awq --options_json=- --events=jsonl` with the job's options as one JSON object on its
// stdin (a memfd: no argv size limit, nothing on disk), turns its stdout events into reports, and
// reports how it ended. Cancel() sends SIGTERM, then SIGKILL after a grace period. An engine
// stopped by a signal the worker did not send (SIGKILL, SIGTERM, SIGINT, SIGHUP: an out-of-memory
// kill, an operator, a node going down) ends FAILED with JobFinished.requeue: the attempt was
// lost, the job was not, and the engine's finished layers stay in output_dir for the next attempt
// to resume. Any other end but success removes the job's partial output: output_dir/.*.quantd-tmp,
// the files it reported as artifacts, and output_dir itself when this run created it and it is
// left empty.
//
// Paths: with the assignment's allowed_roots, every path of the job is opened beneath one of them
// without following symlinks out (path_guard): the worker's own checks, creation and clean-up of
// output_dir, and the engine's opens (the roots are in its options). An artifact reported outside
// output_dir fails the job.
//
// Threading: callbacks run on the process's own reader thread, never after the destructor returns.
// Never destroy an EngineProcess from one of its callbacks.
#ifndef QUANTD_WORKER_DAEMON_ENGINE_PROCESS_H_
#define QUANTD_WORKER_DAEMON_ENGINE_PROCESS_H_

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engine_events.h"
#include "path_guard/roots.h"
#include "quantd/v1/worker_service.pb.h"

namespace quantd::worker {

struct EngineCallbacks {
  // A progress, log or artifact report (job id, attempt and number left for the caller).
  std::function<void(v1::JobReport)> on_report;
  // The end: SUCCEEDED (with the artifacts), FAILED (with the error) or CANCELLED. Called once.
  std::function<void(v1::JobFinished)> on_finished;
  // A decoder layer done (for the worker's metrics; not a report). Optional.
  std::function<void(const LayerDone&)> on_layer;
};

class EngineProcess {
 public:
  // The engine's options for an assignment: one JSON object, keys are quantize-awq's flag names.
  static std::string OptionsJson(const v1::JobAssignment& assignment);

  static absl::StatusOr<std::unique_ptr<EngineProcess>> Start(const std::string& engine,
                                                              const v1::JobAssignment& assignment,
                                                              EngineCallbacks callbacks,
                                                              absl::Duration cancel_grace);
  ~EngineProcess();

  // Stops the engine (SIGTERM, SIGKILL after the grace period); it then finishes CANCELLED.
  // `remove_output` = false leaves output_dir alone: used when the server has given the job to
  // another attempt, which now owns that directory, and when the worker shuts down (the job's
  // next attempt resumes from what the engine finished).
  void Cancel(bool remove_output = true);
  pid_t pid() const { return pid_; }

 private:
  EngineProcess(v1::JobAssignment assignment, EngineCallbacks callbacks, absl::Duration grace)
      : assignment_(std::move(assignment)), callbacks_(std::move(callbacks)), grace_(grace) {}
  // Opens the roots and checks the job's paths beneath them; creates output_dir.
  absl::Status PreparePaths();
  void ReadEvents(int stdout_fd, int stderr_fd);
  v1::JobFinished Conclude(int wait_status);
  void RemovePartialOutput();

  const v1::JobAssignment assignment_;
  EngineCallbacks callbacks_;
  const absl::Duration grace_;
  std::optional<path_guard::Roots> roots_;  // Unset: the assignment named no roots.
  pid_t pid_ = -1;
  bool created_output_dir_ = false;
  std::atomic<bool> cancelled_{false};
  std::atomic<bool> keep_output_{false};
  std::vector<v1::Artifact> artifacts_;  // Reader thread only.
  bool have_result_ = false;
  v1::JobState result_ = v1::JOB_STATE_UNSPECIFIED;
  v1::JobError result_error_;
  std::string stderr_tail_;

  std::mutex mu_;
  std::condition_variable exited_cv_;
  bool exited_ = false;
  std::thread reader_;
  std::thread killer_;
};

}  // namespace quantd::worker

#endif  // QUANTD_WORKER_DAEMON_ENGINE_PROCESS_H_
