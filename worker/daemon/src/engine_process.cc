#include "engine_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine_events.h"
#include "logging/logging.h"

namespace quantd::worker {
namespace {

namespace fs = std::filesystem;

constexpr size_t kStderrTail = 2000;

v1::JobError Error(absl::StatusCode code, const std::string& message) {
  v1::JobError error;
  error.set_code(static_cast<int32_t>(code));
  error.set_message(message);
  return error;
}

}  // namespace

std::vector<std::string> EngineProcess::CommandLine(const std::string& engine,
                                                    const v1::JobAssignment& assignment) {
  const v1::JobSpec& spec = assignment.spec();
  std::vector<std::string> args = {
      engine,          "--model_dir",     spec.model_dir(), "--output_dir", spec.output_dir(),
      "--calib_jsonl", spec.calib_jsonl()};
  auto add = [&](const char* flag, const std::string& value) {
    args.push_back(flag);
    args.push_back(value);
  };
  if (spec.has_num_calib()) add("--num_calib", std::to_string(spec.num_calib()));
  if (spec.has_max_seq_len()) add("--max_seq_len", std::to_string(spec.max_seq_len()));
  if (spec.has_group_size()) add("--group_size", std::to_string(spec.group_size()));
  if (spec.has_apply_chat_template() && !spec.apply_chat_template()) {
    args.push_back("--no_chat_template");
  }
  if (spec.has_system_prompt()) add("--system_prompt", spec.system_prompt());
  if (spec.has_seed()) add("--seed", std::to_string(spec.seed()));
  if (spec.output_dtype() == v1::OUTPUT_DTYPE_BFLOAT16) add("--dtype", "bfloat16");
  if (spec.output_dtype() == v1::OUTPUT_DTYPE_FLOAT16) add("--dtype", "float16");
  if (!spec.eval_text().empty()) add("--eval_text", spec.eval_text());
  if (spec.has_modules_to_not_convert()) {
    add("--modules_to_not_convert", absl::StrJoin(spec.modules_to_not_convert().names(), ","));
  }
  add("--backend", assignment.gpu_index() >= 0 ? "cuda" : "cpu");
  if (spec.gpus() > 1) add("--gpus", std::to_string(spec.gpus()));
  args.push_back("--events=jsonl");
  return args;
}

absl::StatusOr<std::unique_ptr<EngineProcess>> EngineProcess::Start(
    const std::string& engine, const v1::JobAssignment& assignment, EngineCallbacks callbacks,
    absl::Duration cancel_grace) {
  if (access(engine.c_str(), X_OK) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("engine ", engine, " is not an executable (worker flag --engine)"));
  }
  std::unique_ptr<EngineProcess> process(
      new EngineProcess(assignment, std::move(callbacks), cancel_grace));
  std::error_code ec;
  process->created_output_dir_ = !fs::exists(assignment.spec().output_dir(), ec);

  std::vector<std::string> args = CommandLine(engine, assignment);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // The engine sees exactly the job's GPUs, as devices 0..n-1 in rank order.
  const std::string visible = !assignment.gpu_indices().empty()
                                  ? absl::StrJoin(assignment.gpu_indices(), ",")
                              : assignment.gpu_index() >= 0 ? std::to_string(assignment.gpu_index())
                                                            : std::string();

  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    return absl::ResourceExhaustedError(absl::StrCat("pipe: ", std::strerror(errno)));
  }
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return absl::ResourceExhaustedError(absl::StrCat("fork: ", std::strerror(errno)));
  if (pid == 0) {
    // Child: own process group (so SIGKILL reaches helpers it spawns); dies with the worker.
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(125);
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    setenv("CUDA_VISIBLE_DEVICES", visible.c_str(), 1);
    // The worker blocks SIGTERM/SIGINT to sigwait them; the engine must receive them.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  process->pid_ = pid;
  EngineProcess* self = process.get();
  self->reader_ = std::thread([self, o = out[0], e = err[0]] { self->ReadEvents(o, e); });
  return process;
}

EngineProcess::~EngineProcess() {
  if (reader_.joinable()) reader_.join();
  if (killer_.joinable()) killer_.join();
}

void EngineProcess::Cancel(bool remove_output) {
  if (!remove_output) keep_output_ = true;
  std::lock_guard<std::mutex> lock(mu_);
  if (exited_ || cancelled_.exchange(true)) return;
  kill(-pid_, SIGTERM);
  kill(pid_, SIGTERM);
  killer_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(mu_);
    if (!exited_cv_.wait_for(lock, absl::ToChronoNanoseconds(grace_), [&] { return exited_; })) {
      logging::Warning(absl::StrCat("engine ignored SIGTERM for ", absl::FormatDuration(grace_),
                                    "; sending SIGKILL"),
                       {assignment_.job_id(), ""});
      kill(-pid_, SIGKILL);
      kill(pid_, SIGKILL);
    }
  });
}

void EngineProcess::ReadEvents(int stdout_fd, int stderr_fd) {
  std::string out_buffer, err_buffer;
  pollfd fds[2] = {{stdout_fd, POLLIN, 0}, {stderr_fd, POLLIN, 0}};
  int open_fds = 2;
  char chunk[65536];
  while (open_fds > 0) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = read(fds[i].fd, chunk, sizeof(chunk));
      if (n <= 0) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
        continue;
      }
      std::string& buffer = i == 0 ? out_buffer : err_buffer;
      buffer.append(chunk, static_cast<size_t>(n));
      size_t newline;
      while ((newline = buffer.find('\n')) != std::string::npos) {
        std::string line = buffer.substr(0, newline);
        buffer.erase(0, newline + 1);
        if (i == 1) {
          logging::Debug(absl::StrCat("engine: ", line), {assignment_.job_id(), ""});
          stderr_tail_ += line + "\n";
          if (stderr_tail_.size() > kStderrTail)
            stderr_tail_.erase(0, stderr_tail_.size() - kStderrTail);
          continue;
        }
        if (line.empty()) continue;
        absl::StatusOr<EngineEvent> event = ParseEngineEvent(line);
        if (!event.ok()) {
          logging::Warning(std::string(event.status().message()), {assignment_.job_id(), ""});
          continue;
        }
        v1::JobReport report;
        switch (event->kind) {
          case EngineEvent::Kind::kProgress:
            *report.mutable_progress() = event->progress;
            break;
          case EngineEvent::Kind::kLog:
            *report.mutable_log() = event->log;
            break;
          case EngineEvent::Kind::kArtifact:
            artifacts_.push_back(event->artifact);
            *report.mutable_artifact() = event->artifact;
            break;
          case EngineEvent::Kind::kLayer:
            if (callbacks_.on_layer) callbacks_.on_layer(event->layer);
            continue;
          case EngineEvent::Kind::kResult:
            have_result_ = true;
            result_ = event->result;
            result_error_ = event->error;
            continue;
        }
        callbacks_.on_report(std::move(report));
      }
    }
  }
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    exited_ = true;
  }
  exited_cv_.notify_all();
  v1::JobFinished finished = Conclude(status);
  // A lost attempt's output holds its finished layers, which the next attempt resumes from.
  if (finished.state() != v1::JOB_STATE_SUCCEEDED && !keep_output_ && !finished.requeue()) {
    RemovePartialOutput();
  }
  callbacks_.on_finished(std::move(finished));
}

v1::JobFinished EngineProcess::Conclude(int status) {
  v1::JobFinished finished;
  finished.set_job_id(assignment_.job_id());
  finished.set_attempt(assignment_.attempt());
  const bool exited = WIFEXITED(status);
  const int code = exited ? WEXITSTATUS(status) : -1;
  std::string tail = stderr_tail_.empty() ? "" : absl::StrCat("; stderr ends with: ", stderr_tail_);
  if (exited && code == 0 && have_result_ && result_ == v1::JOB_STATE_SUCCEEDED) {
    for (const v1::Artifact& artifact : artifacts_) {
      std::error_code ec;
      const auto size = fs::file_size(artifact.path(), ec);
      if (ec || static_cast<int64_t>(size) != artifact.size_bytes()) {
        finished.set_state(v1::JOB_STATE_FAILED);
        *finished.mutable_error() =
            Error(absl::StatusCode::kDataLoss,
                  absl::StrCat("artifact ", artifact.path(), " is missing or not ",
                               artifact.size_bytes(), " bytes as the engine reported"));
        return finished;
      }
    }
    finished.set_state(v1::JOB_STATE_SUCCEEDED);
    *finished.mutable_artifacts() = {artifacts_.begin(), artifacts_.end()};
    return finished;
  }
  if (cancelled_) {
    finished.set_state(v1::JOB_STATE_CANCELLED);
    return finished;
  }
  // Stopped from outside (the worker sent nothing): an out-of-memory kill, an operator, a node
  // shutting down. The attempt is lost, not the job: the server runs it again, resuming from the
  // layers the engine finished.
  const bool stopped_from_outside =
      (exited && code == 3) || (!exited && WIFSIGNALED(status) &&
                                (WTERMSIG(status) == SIGKILL || WTERMSIG(status) == SIGTERM ||
                                 WTERMSIG(status) == SIGINT || WTERMSIG(status) == SIGHUP));
  if (stopped_from_outside) finished.set_requeue(true);
  finished.set_state(v1::JOB_STATE_FAILED);
  if (have_result_ && result_ == v1::JOB_STATE_FAILED) {
    *finished.mutable_error() = result_error_;
  } else if (exited && code == 127) {
    *finished.mutable_error() =
        Error(absl::StatusCode::kFailedPrecondition, "the engine could not be executed" + tail);
  } else if (exited && code == 3) {
    *finished.mutable_error() = Error(absl::StatusCode::kAborted,
                                      "the engine was stopped by a signal the worker did not send");
  } else if (exited) {
    *finished.mutable_error() =
        Error(absl::StatusCode::kInternal,
              absl::StrCat("the engine exited with status ", code, " without a result", tail));
  } else {
    const int sig = WTERMSIG(status);
    *finished.mutable_error() =
        Error(sig == SIGKILL ? absl::StatusCode::kResourceExhausted : absl::StatusCode::kInternal,
              absl::StrCat("the engine was killed by signal ", sig, " (", strsignal(sig), ")",
                           sig == SIGKILL ? ", possibly out of memory" : "", tail));
  }
  return finished;
}

void EngineProcess::RemovePartialOutput() {
  std::error_code ec;
  const fs::path output_dir(assignment_.spec().output_dir());
  for (const v1::Artifact& artifact : artifacts_) fs::remove(artifact.path(), ec);
  if (fs::is_directory(output_dir, ec)) {
    for (const fs::directory_entry& entry : fs::directory_iterator(output_dir, ec)) {
      const std::string name = entry.path().filename().string();
      if (name.size() > 12 && name[0] == '.' && name.ends_with(".quantd-tmp")) {
        fs::remove_all(entry.path(), ec);
      }
    }
    if (created_output_dir_ && fs::is_empty(output_dir, ec)) fs::remove(output_dir, ec);
  }
}

}  // namespace quantd::worker
