// quantd-e2e-bench: AWQ end to end, as a user runs it. Writes a random checkpoint of a config.json
// geometry (planted outlier channels, the generator of bench/random_model) and a calibration jsonl
// of random pre-tokenized rows to local disk, then runs the real `quantize-awq` binary on them and
// times it from its start to its exit (the last file written and renamed into place). Prints one
// markdown table row: geometry, tokens, wall time, time per phase (quant_report.json), achieved
// TFLOP/s, peak GPU memory (the backend's allocations from the report, and the whole device as
// nvidia-smi sampled it), the child's peak RSS (getrusage) and a sanity check of the output.
//
//   quantd-e2e-bench --quantize_awq PATH --config config.json --blocks 128 --len 512
//                    [--layers K] [--work_dir DIR] [--name NAME] [--header] [--keep]
//                    [--peak_tflops 790] [--log FILE] [--backend auto|cpu|cuda] [--events]
//                    [--calib FILE --tokenizer_dir DIR] [--kill_after_layers N] [--sha]
//
// With --layers K < the config's layer count only K layers are quantized; the row then also
// gives the whole model's time extrapolated from the time per layer.
//
// --calib FILE quantizes with a text calibration file (chat-wrapped, --blocks texts sampled,
// blocks of --len tokens) instead of random pre-tokenized rows; --tokenizer_dir supplies the
// tokenizer files (and chat template) the random model lacks. --kill_after_layers N measures
// resuming: quantize-awq is killed (SIGKILL) once N layers are kept in its output directory, run
// again into it, and the row gives both runs, the check and the float-forward replay of the kept
// layers, and the whole model's times extrapolated (uninterrupted vs killed at layer N of the
// full depth and resumed). --sha prints the output's model.safetensors SHA-256 ("[e2e] sha256").
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "awq_flops.h"
#include "io/file_util.h"
#include "io/json_file.h"
#include "io/safetensors_file.h"
#include "io_random_model.h"
#include "model/model_config.h"
#include "nlohmann/json.hpp"
#include "output_check.h"

namespace quantd::bench {
namespace {

namespace fs = std::filesystem;
constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

struct Args {
  std::string quantize_awq, config, work_dir = "/tmp/quantd-e2e", name, log, backend = "auto";
  std::string calib, tokenizer_dir;
  int blocks = 128, len = 512, layers = 0, kill_after_layers = 0;
  double peak_tflops = 790.0;
  bool header = false, keep = false, events = false, sha = false;
};

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int Usage(const std::string& message) {
  std::fprintf(stderr,
               "error: %s\nusage: quantd-e2e-bench --quantize_awq PATH --config config.json "
               "--blocks N --len L [--layers K] [--work_dir DIR] [--name NAME] [--header] "
               "[--keep] [--peak_tflops T] [--log FILE] [--backend auto|cpu|cuda] [--events] "
               "[--calib FILE --tokenizer_dir DIR] [--kill_after_layers N] [--sha]\n",
               message.c_str());
  return 2;
}

// N rows of L random token ids: with --no_chat_template each row is one text of exactly L
// tokens, so the calibration is exactly N blocks of L.
absl::Status WriteCalibration(const std::string& path, int rows, int len, int64_t vocab) {
  std::ofstream out(path, std::ios::trunc);
  if (!out) return absl::InternalError("cannot create " + path);
  std::mt19937 rng(42);
  std::uniform_int_distribution<int64_t> id(0, vocab - 1);
  for (int r = 0; r < rows; ++r) {
    out << "{\"input_ids\": [";
    for (int t = 0; t < len; ++t) out << (t == 0 ? "" : ", ") << id(rng);
    out << "]}\n";
  }
  out.close();
  return out ? absl::OkStatus() : absl::InternalError("cannot write " + path);
}

// Peak of the device's used memory while the command runs, from `nvidia-smi -lms`, when there is
// an nvidia-smi (the whole device: context, cuBLAS workspaces and allocations of every process).
class GpuMemorySampler {
 public:
  GpuMemorySampler() {
    int fds[2];
    if (::pipe(fds) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(fds[1], 1);
      const int null = ::open("/dev/null", O_WRONLY);
      if (null >= 0) ::dup2(null, 2);
      ::close(fds[0]);
      ::close(fds[1]);
      ::execlp("nvidia-smi", "nvidia-smi", "--query-gpu=memory.used",
               "--format=csv,noheader,nounits", "-lms", "50", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(fds[1]);
    if (pid_ < 0) {
      ::close(fds[0]);
      return;
    }
    reader_ = std::thread([this, fd = fds[0]] {
      FILE* f = ::fdopen(fd, "r");
      char line[128];
      while (f != nullptr && std::fgets(line, sizeof(line), f) != nullptr) {
        const long mib = std::strtol(line, nullptr, 10);
        if (first_ < 0) first_ = mib;
        peak_ = std::max<long>(peak_, mib);
      }
      if (f != nullptr) std::fclose(f);
    });
  }
  ~GpuMemorySampler() { Stop(); }
  void Stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
    if (reader_.joinable()) reader_.join();
  }
  // MiB; negative when nothing was sampled.
  long peak_mib() const { return peak_; }
  long first_mib() const { return first_; }

 private:
  pid_t pid_ = -1;
  std::thread reader_;
  std::atomic<long> peak_{-1}, first_{-1};
};

double RealNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Last modification of a directory (a rename into it counts), seconds since the epoch.
double DirMtime(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return 0.0;
  return static_cast<double>(st.st_mtim.tv_sec) + 1e-9 * static_cast<double>(st.st_mtim.tv_nsec);
}

struct ChildRun {
  int exit_code = -1;
  double wall_seconds = 0.0;
  double start_realtime = 0.0;
  double max_rss_gib = 0.0;
};

// Layers kept in `out_dir`'s resume journal (pipeline/resume_journal.h: its complete lines but the
// header).
int KeptLayers(const std::string& out_dir) {
  std::ifstream in(out_dir + "/.resume.quantd-tmp");
  int lines = 0;
  std::string line;
  while (std::getline(in, line)) lines += in.eof() ? 0 : 1;
  return std::max(0, lines - 1);
}

// Runs argv with stdout and stderr into `log`; wall time from fork to exit, the child's peak RSS.
// With `kill_after_layers` > 0 the child is killed (SIGKILL) once that many layers are kept in
// `out_dir` (wall time then to the kill).
ChildRun RunChild(const std::vector<std::string>& argv, const std::string& log,
                  int kill_after_layers = 0, const std::string& out_dir = "") {
  ChildRun run;
  std::vector<char*> cargs;
  for (const std::string& a : argv) cargs.push_back(const_cast<char*>(a.c_str()));
  cargs.push_back(nullptr);
  const double start = Now();
  run.start_realtime = RealNow();
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    ::execv(cargs[0], cargs.data());
    ::_exit(127);
  }
  if (pid < 0) return run;
  int status = 0;
  struct rusage usage {};
  if (kill_after_layers > 0) {
    while (::wait4(pid, &status, WNOHANG, &usage) == 0) {
      if (KeptLayers(out_dir) >= kill_after_layers) {
        ::kill(pid, SIGKILL);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  ::wait4(pid, &status, 0, &usage);
  run.wall_seconds = Now() - start;
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  run.max_rss_gib = static_cast<double>(usage.ru_maxrss) * 1024.0 / kGiB;  // ru_maxrss is KiB
  return run;
}

double PhaseSeconds(const nlohmann::json& report, const char* phase) {
  const nlohmann::json& p = report.value("phase_seconds", nlohmann::json::object());
  return p.contains(phase) && p[phase].is_number() ? p[phase].get<double>() : 0.0;
}

int Main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (k == "--header") {
      a.header = true;
      continue;
    }
    if (k == "--keep") {
      a.keep = true;
      continue;
    }
    if (k == "--events") {
      a.events = true;
      continue;
    }
    if (k == "--sha") {
      a.sha = true;
      continue;
    }
    if (i + 1 >= argc) return Usage("missing value for " + k);
    const std::string v = argv[++i];
    if (k == "--quantize_awq") {
      a.quantize_awq = v;
    } else if (k == "--config") {
      a.config = v;
    } else if (k == "--work_dir") {
      a.work_dir = v;
    } else if (k == "--name") {
      a.name = v;
    } else if (k == "--log") {
      a.log = v;
    } else if (k == "--backend") {
      a.backend = v;
    } else if (k == "--calib") {
      a.calib = v;
    } else if (k == "--tokenizer_dir") {
      a.tokenizer_dir = v;
    } else if (k == "--kill_after_layers") {
      a.kill_after_layers = std::atoi(v.c_str());
    } else if (k == "--blocks") {
      a.blocks = std::atoi(v.c_str());
    } else if (k == "--len") {
      a.len = std::atoi(v.c_str());
    } else if (k == "--layers") {
      a.layers = std::atoi(v.c_str());
    } else if (k == "--peak_tflops") {
      a.peak_tflops = std::atof(v.c_str());
    } else {
      return Usage("unknown argument " + k);
    }
  }
  if (a.quantize_awq.empty() || a.config.empty()) {
    return Usage("--quantize_awq and --config are required");
  }
  if (a.blocks <= 0 || a.len <= 0 || a.layers < 0) {
    return Usage("--blocks and --len must be positive, --layers not negative");
  }
  absl::StatusOr<nlohmann::json> cj = engine::ReadJsonFile(a.config);
  if (!cj.ok()) return Usage(std::string(cj.status().message()));
  absl::StatusOr<engine::ModelConfig> full = engine::ParseModelConfig(*cj, a.config);
  if (!full.ok()) return Usage(std::string(full.status().message()));
  const int full_layers = full->num_hidden_layers;
  if (a.layers > 0 && a.layers < full_layers) (*cj)["num_hidden_layers"] = a.layers;
  absl::StatusOr<engine::ModelConfig> config = engine::ParseModelConfig(*cj, a.config);
  if (!config.ok()) return Usage(std::string(config.status().message()));
  const engine::ModelConfig& c = *config;
  if (a.name.empty()) a.name = fs::path(a.config).stem().string();

  const std::string model_dir = a.work_dir + "/model", out_dir = a.work_dir + "/out";
  std::string calib = a.work_dir + "/calib.jsonl";
  if (a.log.empty()) a.log = a.work_dir + "/quantize-awq.log";
  std::error_code ec;
  fs::remove_all(a.work_dir, ec);
  fs::create_directories(a.work_dir, ec);
  double t = Now();
  engine::testing::RandomModelOptions gen{*cj, model_dir, c.dtype, 1234, 4, 20.0f};
  // A slice-parallel stream: an 8B-parameter model is 16 GB of random values.
  gen.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (absl::Status s = engine::testing::WriteRandomModel(gen); !s.ok()) {
    std::fprintf(stderr, "random model: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  if (!a.calib.empty()) {
    calib = a.calib;  // texts: chat-wrapped with the tokenizer's template
    for (const char* f : {"tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json",
                          "chat_template.jinja"}) {
      const fs::path from = fs::path(a.tokenizer_dir) / f;
      if (fs::exists(from, ec)) fs::copy_file(from, fs::path(model_dir) / f, ec);
    }
  } else if (absl::Status s = WriteCalibration(calib, a.blocks, a.len, c.vocab_size); !s.ok()) {
    std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
    return 1;
  }
  ::sync();  // the model is on disk, as a downloaded one would be
  std::fprintf(stderr, "[e2e] %s: random model and calibration written in %.1f s\n", a.name.c_str(),
               Now() - t);

  std::vector<std::string> cmd = {a.quantize_awq,
                                  "--model_dir",
                                  model_dir,
                                  "--output_dir",
                                  out_dir,
                                  "--calib_jsonl",
                                  calib,
                                  "--num_calib",
                                  std::to_string(a.blocks),
                                  "--max_seq_len",
                                  std::to_string(a.len),
                                  "--backend",
                                  a.backend};
  if (a.calib.empty()) cmd.push_back("--no_chat_template");
  if (a.events) cmd.push_back("--events=jsonl");  // the daemon's mode: artifacts with SHA-256
  std::string shown;
  for (const std::string& s : cmd) shown += s + " ";
  std::fprintf(stderr, "[e2e] running: %s\n", shown.c_str());
  ChildRun killed;
  if (a.kill_after_layers > 0) {  // the interrupted attempt; the run below resumes it
    killed = RunChild(cmd, a.log + ".killed", a.kill_after_layers, out_dir);
    std::fprintf(stderr, "[e2e] killed after %d layers kept (%d in the journal), %.2f s\n",
                 a.kill_after_layers, KeptLayers(out_dir), killed.wall_seconds);
  }
  const int kept = KeptLayers(out_dir);
  GpuMemorySampler gpu;
  const ChildRun run = RunChild(cmd, a.log);
  gpu.Stop();
  std::fprintf(stderr, "[e2e] quantize-awq exit %d in %.2f s (log %s)\n", run.exit_code,
               run.wall_seconds, a.log.c_str());

  nlohmann::json report = nlohmann::json::object();
  if (absl::StatusOr<nlohmann::json> r = engine::ReadJsonFile(out_dir + "/quant_report.json");
      r.ok()) {
    report = *r;
  }
  const std::string sanity =
      run.exit_code == 0 ? CheckAwqOutput(out_dir, c, a.calib.empty() ? a.blocks : 0, a.len, report)
                         : "quantize-awq exit " + std::to_string(run.exit_code);
  if (a.sha) {
    absl::StatusOr<engine::Artifact> weights =
        engine::DescribeArtifact(out_dir + "/model.safetensors");
    std::fprintf(stderr, "[e2e] sha256 %s model.safetensors %s\n", a.name.c_str(),
                 weights.ok() ? weights->sha256.c_str() : "missing");
  }
  int64_t out_bytes = 0;
  for (const fs::directory_entry& e : fs::directory_iterator(out_dir, ec)) {
    if (e.is_regular_file(ec)) out_bytes += static_cast<int64_t>(e.file_size(ec));
  }

  const double loading = PhaseSeconds(report, "loading");
  const double calibrating = PhaseSeconds(report, "calibrating");
  const double quantizing = PhaseSeconds(report, "quantizing");
  const double exporting = PhaseSeconds(report, "exporting");
  const double outside = run.wall_seconds - loading - calibrating - quantizing - exporting;
  // The measure: from the start to the last file renamed into the output directory
  // (what follows is hashing the artifacts and the process's exit).
  const double to_last_file = run.exit_code == 0 ? DirMtime(out_dir) - run.start_realtime : 0.0;
  const nlohmann::json cal = report.value("calibration", nlohmann::json::object());
  const int blocks = cal.value("blocks", a.blocks);
  const double tokens = static_cast<double>(blocks) * a.len;
  const double flops = AwqLayerFlops(c, tokens, a.len) * c.num_hidden_layers;
  const double per_layer = quantizing / c.num_hidden_layers;
  const double whole = run.wall_seconds + per_layer * (full_layers - c.num_hidden_layers);
  const nlohmann::json mem = report.value("device_memory", nlohmann::json::object());
  const double backend_peak = mem.value("peak_allocated_bytes", int64_t{0}) / kGiB;
  const double device_peak =
      gpu.peak_mib() >= 0
          ? static_cast<double>(gpu.peak_mib() - std::max(0L, gpu.first_mib())) / 1024.0
          : 0.0;
  const nlohmann::json ov = report.value("overlap_seconds", nlohmann::json::object());
  if (a.kill_after_layers > 0) {
    // Resuming, per layer: the check of a kept layer, the float-forward replay of a kept layer,
    // quantizing a layer; the rest of a run (process start, loading, calibrating, embedding, the
    // fingerprint, exporting, exit) is the same whatever the depth. The whole model, killed at the
    // same share of its depth: uninterrupted = rest + L·q; the resumed attempt = rest + K·(check +
    // replay)
    // + (L − K)·q.
    const nlohmann::json resume = report.value("resume", nlohmann::json::object());
    const int at = resume.value("resumed_at_layer", 0);
    const double check = resume.value("verify_seconds", 0.0);
    const double replay = resume.value("replay_seconds", 0.0);
    const int n = c.num_hidden_layers;
    // Seconds a layer, over the layers this run quantized: the engine logs "layer k/n quantized
    // (X s per layer)" timed from its layer loop's start (after embedding and the replay).
    double q = 0.0;
    {
      std::ifstream log(a.log);
      std::string line;
      while (std::getline(log, line)) {
        const size_t at_paren = line.find(" quantized (");
        if (at_paren != std::string::npos) q = std::atof(line.c_str() + at_paren + 12);
      }
    }
    const double rest = run.wall_seconds - check - replay - (n - at) * q;
    const int full_at = static_cast<int>(std::lround(static_cast<double>(at) * full_layers / n));
    const double per_check = at > 0 ? check / at : 0.0, per_replay = at > 0 ? replay / at : 0.0;
    if (a.header) {
      std::printf(
          "| run | geometry | layers | blocks x len | killed with layers kept | killed run s | "
          "resumed at layer | resumed run s | check s (s/layer) | replay s (s/layer) | quantize "
          "s/layer | rest of a run s | whole model: uninterrupted s | whole model: killed at "
          "layer | resumed attempt s | sanity |\n|---|---|---|---|---|---|---|---|---|---|---|---|"
          "---|---|---|---|\n");
    }
    std::printf(
        "| %s | %s h%d i%d | %d of %d | %dx%d | %d | %.2f | %d | %.2f | %.2f (%.3f) | %.2f (%.3f) "
        "| %.2f | %.2f | ≈ %.1f | %d of %d | ≈ %.1f | %s |\n",
        a.name.c_str(), c.architecture_name.c_str(), c.hidden_size, c.intermediate_size, n,
        full_layers, blocks, a.len, kept, killed.wall_seconds, at, run.wall_seconds, check,
        per_check, replay, per_replay, q, rest, rest + full_layers * q, full_at, full_layers,
        rest + full_at * (per_check + per_replay) + (full_layers - full_at) * q,
        at == kept && at > 0 ? sanity.c_str() : "did not resume where killed");
    if (!a.keep) fs::remove_all(a.work_dir, ec);
    return run.exit_code == 0 && sanity == "ok" && at == kept ? 0 : 1;
  }
  if (a.header) {
    std::printf(
        "| run | geometry | backend | layers | blocks x len | tokens | to last file s | wall s | "
        "loading s | "
        "calibrating s | quantizing s | exporting s | outside phases s | s/layer | whole model s "
        "| TFLOP | TFLOP/s (quantizing) | TFLOP/s (wall) | %% of %.0f (wall) | layer read wait s "
        "| write wait s | fsync s | peak GPU GiB (backend) | peak GPU GiB (device) | host peak "
        "RSS GiB | output MiB | sanity |\n",
        a.peak_tflops);
  }
  std::string sep;
  for (int i = 0; i < 27; ++i) sep += "---|";
  if (a.header) std::printf("|%s\n", sep.c_str());
  std::printf(
      "| %s | %s h%d i%d | %s | %d of %d | %dx%d | %.0f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f "
      "| "
      "%.2f | %.3f | %s%.1f | %.1f | %.1f | %.1f | %.1f | %.2f | %.2f | %.2f | %.2f | %.2f | "
      "%.2f | %.1f | %s |\n",
      a.name.c_str(), c.architecture_name.c_str(), c.hidden_size, c.intermediate_size,
      report.value("settings", nlohmann::json::object()).value("backend", "?").c_str(),
      c.num_hidden_layers, full_layers, blocks, a.len, tokens, to_last_file, run.wall_seconds,
      loading, calibrating, quantizing, exporting, outside, per_layer,
      c.num_hidden_layers < full_layers ? "≈ " : "", whole, flops / 1e12,
      quantizing > 0 ? flops / 1e12 / quantizing : 0.0, flops / 1e12 / run.wall_seconds,
      100.0 * flops / 1e12 / run.wall_seconds / a.peak_tflops, ov.value("layer_read_wait", 0.0),
      ov.value("write_wait", 0.0), ov.value("weights_fsync", 0.0), backend_peak, device_peak,
      run.max_rss_gib, static_cast<double>(out_bytes) / (1024.0 * 1024.0), sanity.c_str());
  if (!a.keep) fs::remove_all(a.work_dir, ec);
  return run.exit_code == 0 && sanity == "ok" ? 0 : 1;
}

}  // namespace
}  // namespace quantd::bench

int main(int argc, char** argv) { return quantd::bench::Main(argc, argv); }
