#include "engine_process.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
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
#include "nlohmann/json.hpp"
#include "path_guard/beneath.h"

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

std::string EngineProcess::OptionsJson(const v1::JobAssignment& assignment) {
  const v1::JobSpec& spec = assignment.spec();
  nlohmann::json o = {{"model_dir", spec.model_dir()},
                      {"output_dir", spec.output_dir()},
                      {"calib_jsonl", spec.calib_jsonl()}};
  if (spec.has_num_calib()) o["num_calib"] = spec.num_calib();
  if (spec.has_max_seq_len()) o["max_seq_len"] = spec.max_seq_len();
  if (spec.has_group_size()) o["group_size"] = spec.group_size();
  if (spec.has_apply_chat_template() && !spec.apply_chat_template()) o["no_chat_template"] = true;
  if (spec.chat_template_fallback()) o["chat_template_fallback"] = true;
  if (spec.has_system_prompt()) o["system_prompt"] = spec.system_prompt();
  if (spec.has_seed()) o["seed"] = spec.seed();
  if (spec.output_dtype() == v1::OUTPUT_DTYPE_BFLOAT16) o["dtype"] = "bfloat16";
  if (spec.output_dtype() == v1::OUTPUT_DTYPE_FLOAT16) o["dtype"] = "float16";
  if (!spec.eval_text().empty()) o["eval_text"] = spec.eval_text();
  if (spec.has_zero_point()) o["zero_point"] = spec.zero_point();
  if (spec.layout() == v1::WEIGHT_LAYOUT_COMPRESSED_TENSORS) o["format"] = "compressed-tensors";
  if (spec.scale_dtype() == v1::OUTPUT_DTYPE_BFLOAT16) o["scale_dtype"] = "bfloat16";
  if (spec.scale_dtype() == v1::OUTPUT_DTYPE_FLOAT16) o["scale_dtype"] = "float16";
  if (spec.has_max_perplexity_increase_percent()) {
    o["max_ppl_increase"] = spec.max_perplexity_increase_percent();
  }
  if (spec.has_modules_to_not_convert()) {
    o["modules_to_not_convert"] = absl::StrJoin(spec.modules_to_not_convert().names(), ",");
  }
  o["backend"] = assignment.gpu_index() >= 0 ? "cuda" : "cpu";
  if (spec.gpus() > 1) o["gpus"] = spec.gpus();
  if (assignment.allowed_roots_size() > 0) {
    o["allowed_roots"] = std::vector<std::string>(assignment.allowed_roots().begin(),
                                                  assignment.allowed_roots().end());
  }
  // Paths and texts are UTF-8 (the server checks); replace rather than throw if one is not.
  return o.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

absl::Status EngineProcess::PreparePaths() {
  const v1::JobSpec& spec = assignment_.spec();
  if (assignment_.allowed_roots_size() == 0) {
    std::error_code ec;
    created_output_dir_ = !fs::exists(spec.output_dir(), ec);
    return absl::OkStatus();
  }
  absl::StatusOr<path_guard::Roots> roots = path_guard::Roots::Open(
      {assignment_.allowed_roots().begin(), assignment_.allowed_roots().end()});
  if (!roots.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("this worker cannot use the job's roots: ", roots.status().message()));
  }
  roots_ = std::move(*roots);
  struct Check {
    const char* field;
    const std::string& path;
    int flags;
  };
  std::vector<Check> checks = {{"model_dir", spec.model_dir(), O_PATH | O_DIRECTORY},
                               {"calib_jsonl", spec.calib_jsonl(), O_RDONLY}};
  if (!spec.eval_text().empty()) checks.push_back({"eval_text", spec.eval_text(), O_RDONLY});
  for (const Check& check : checks) {
    const int fd = roots_->OpenFile(check.path, check.flags);
    if (fd < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("spec.", check.field, " ", check.path, " ", path_guard::ErrorText(errno)));
    }
    close(fd);
  }
  int fd = roots_->OpenFile(spec.output_dir(), O_PATH | O_DIRECTORY);
  created_output_dir_ = fd < 0 && errno == ENOENT;
  if (fd >= 0) close(fd);
  if (fd < 0 && (!created_output_dir_ || roots_->MakeDirectories(spec.output_dir()) != 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("spec.output_dir ", spec.output_dir(), " ", path_guard::ErrorText(errno)));
  }
  return absl::OkStatus();
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
  if (absl::Status s = process->PreparePaths(); !s.ok()) return s;

  // The options on stdin: a memfd, so a 200 kB system prompt meets no argv limit.
  const int options = memfd_create("quantd-engine-options", MFD_CLOEXEC);
  if (options < 0) {
    return absl::ResourceExhaustedError(absl::StrCat("memfd_create: ", std::strerror(errno)));
  }
  const std::string json = OptionsJson(assignment);
  for (size_t done = 0; done < json.size();) {
    const ssize_t n = write(options, json.data() + done, json.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      close(options);
      return absl::ResourceExhaustedError(absl::StrCat("memfd write: ", std::strerror(errno)));
    }
    done += static_cast<size_t>(n);
  }
  lseek(options, 0, SEEK_SET);
  std::vector<std::string> args = {engine, "--options_json=-", "--events=jsonl"};
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
    close(options);
    return absl::ResourceExhaustedError(absl::StrCat("pipe: ", std::strerror(errno)));
  }
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    close(options);
    return absl::ResourceExhaustedError(absl::StrCat("fork: ", std::strerror(errno)));
  }
  if (pid == 0) {
    // Child: own process group (so SIGKILL reaches helpers it spawns); dies with the worker.
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(125);
    dup2(options, 0);
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
  close(options);
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
            result_quality_ = event->quality;
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
  if (result_quality_.has_value()) *finished.mutable_quality() = *result_quality_;
  const bool exited = WIFEXITED(status);
  const int code = exited ? WEXITSTATUS(status) : -1;
  std::string tail = stderr_tail_.empty() ? "" : absl::StrCat("; stderr ends with: ", stderr_tail_);
  if (exited && code == 0 && have_result_ && result_ == v1::JOB_STATE_SUCCEEDED) {
    for (const v1::Artifact& artifact : artifacts_) {
      if (!path_guard::LexicallyInside(artifact.path(), assignment_.spec().output_dir())) {
        finished.set_state(v1::JOB_STATE_FAILED);
        *finished.mutable_error() = Error(
            absl::StatusCode::kInternal,
            absl::StrCat("the engine reported an artifact outside output_dir: ", artifact.path()));
        return finished;
      }
      struct stat st;
      const int fd = roots_ ? roots_->OpenFile(artifact.path(), O_PATH)
                            : open(artifact.path().c_str(), O_PATH | O_CLOEXEC);
      const bool stated = fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
      if (fd >= 0) close(fd);
      if (!stated || static_cast<int64_t>(st.st_size) != artifact.size_bytes()) {
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
  const std::string& output_dir = assignment_.spec().output_dir();
  if (!roots_) {
    std::error_code ec;
    for (const v1::Artifact& artifact : artifacts_) {
      if (path_guard::LexicallyInside(artifact.path(), output_dir)) fs::remove(artifact.path(), ec);
    }
    if (fs::is_directory(output_dir, ec)) {
      for (const fs::directory_entry& entry : fs::directory_iterator(output_dir, ec)) {
        const std::string name = entry.path().filename().string();
        if (name.size() > 12 && name[0] == '.' && name.ends_with(".quantd-tmp")) {
          fs::remove_all(entry.path(), ec);
        }
      }
      if (created_output_dir_ && fs::is_empty(output_dir, ec)) fs::remove(output_dir, ec);
    }
    return;
  }
  // Beneath the roots: a directory swapped for a symlink meanwhile is not followed.
  for (const v1::Artifact& artifact : artifacts_) {
    if (path_guard::LexicallyInside(artifact.path(), output_dir)) roots_->Unlink(artifact.path());
  }
  const int dir = roots_->OpenFile(output_dir, O_RDONLY | O_DIRECTORY);
  if (dir < 0) return;
  if (DIR* listing = fdopendir(dir)) {
    std::vector<std::string> temporaries;
    while (dirent* entry = readdir(listing)) {
      const std::string name = entry->d_name;
      if (name.size() > 12 && name[0] == '.' && name.ends_with(".quantd-tmp")) {
        temporaries.push_back(name);
      }
    }
    for (const std::string& name : temporaries) unlinkat(dirfd(listing), name.c_str(), 0);
    closedir(listing);  // Closes `dir`.
  } else {
    close(dir);
  }
  if (created_output_dir_) roots_->Unlink(output_dir, AT_REMOVEDIR);  // Fails unless empty.
}

}  // namespace quantd::worker
