// fake-quantize-awq: a stand-in for quantize-awq that speaks the same child-process protocol
// (docs/engine-events.md) without doing any math, so the service can be tested end to end in
// seconds. It emits progress, layer (1024 tokens per step), log and artifact events, writes files
// into output_dir under
// `.<name>.quantd-tmp` and renames them, sleeps between steps, exits 3 on SIGTERM after removing
// its temporary file, and can be told to fail or crash.
//
// Behaviour: env FAKE_ENGINE_STEPS (default 5), FAKE_ENGINE_STEP_MS (default 100), overridden per
// job by <model_dir>/fake_engine.json: {"steps": N, "step_ms": M, "fail": "message",
// "crash": true, "ignore_sigterm": true}. With FAKE_ENGINE_RUN_LOG set, each run appends
// "<output_dir> <pid>" to that file (to count how often a job ran).
//
// Options come as flags or, as quantd-worker passes them, as `--options_json=-` (a JSON object on
// stdin). With allowed_roots its opens stay beneath them, as quantize-awq's do (path_guard).
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <thread>

#include "file_digest.h"
#include "nlohmann/json.hpp"
#include "path_guard/confined_io.h"

namespace {

namespace fs = std::filesystem;
std::atomic<bool> g_terminate{false};

void Emit(const nlohmann::json& event) {
  std::string line = event.dump() + "\n";
  fwrite(line.data(), 1, line.size(), stdout);
  fflush(stdout);
}

void Progress(const char* phase, int done, int total, double fraction) {
  Emit({{"event", "progress"},
        {"phase", phase},
        {"layers_done", done},
        {"layers_total", total},
        {"fraction", fraction},
        {"eta_seconds", 1.0}});
}

// Appends `content` to `path` (created beneath the roots when confined); false on failure.
bool Append(const fs::path& path, const std::string& content) {
  const int fd = quantd::path_guard::Open(path.string(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0) return false;
  const bool ok = write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size());
  close(fd);
  return ok;
}

void Fail(const std::string& message) {
  Emit({{"event", "result"},
        {"status", "failed"},
        {"code", "INVALID_ARGUMENT"},
        {"code_number", 3},
        {"message", message}});
}

// Writes `content` to dir/name through a temporary name; emits the artifact event.
bool WriteArtifact(const fs::path& dir, const std::string& name, const std::string& content) {
  const fs::path temp = dir / ("." + name + ".quantd-tmp");
  if (!Append(temp, content) ||
      quantd::path_guard::Rename(temp.string(), (dir / name).string()) != 0) {
    Fail("cannot write " + name + ": " + quantd::path_guard::ErrorText(errno));
    return false;
  }
  const fs::path final_path = dir / name;
  Emit({{"event", "artifact"},
        {"path", final_path.string()},
        {"size_bytes", static_cast<int64_t>(fs::file_size(final_path))},
        {"sha256", quantd::worker::Sha256File(final_path.string()).value_or("")}});
  return true;
}

int Usage(const std::string& message) {
  fprintf(stderr, "fake-quantize-awq: %s\n", message.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> flags;
  std::vector<std::string> roots;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--no_chat_template") continue;
    if (arg == "--options_json=-") {
      std::stringstream text;
      text << std::cin.rdbuf();
      nlohmann::json options = nlohmann::json::parse(text.str(), nullptr, false);
      if (!options.is_object()) return Usage("--options_json: not a JSON object");
      for (const auto& [key, value] : options.items()) {
        if (key == "allowed_roots") {
          roots = value.get<std::vector<std::string>>();
        } else {
          flags[key] = value.is_string() ? value.get<std::string>() : value.dump();
        }
      }
      continue;
    }
    if (arg.rfind("--", 0) != 0) return Usage("unexpected argument " + arg);
    if (size_t eq = arg.find('='); eq != std::string::npos) {
      flags[arg.substr(2, eq - 2)] = arg.substr(eq + 1);
    } else if (i + 1 < argc) {
      flags[arg.substr(2)] = argv[++i];
    } else {
      return Usage("flag " + arg + " needs a value");
    }
  }
  for (const char* required : {"model_dir", "output_dir", "calib_jsonl"}) {
    if (flags[required].empty()) return Usage(std::string("--") + required + " is required");
  }
  if (flags["events"] != "jsonl") return Usage("--events=jsonl is required");
  if (!roots.empty() && !quantd::path_guard::ConfineProcess(roots).ok()) {
    return Usage("allowed_roots cannot be opened");
  }
  if (const char* record = std::getenv("FAKE_ENGINE_OPTIONS_LOG")) {
    // Tests check what reached the engine (e.g. a 200 kB system prompt, intact).
    std::ofstream(record, std::ios::app) << flags["system_prompt"].size() << "\n";
  }

  int steps = std::getenv("FAKE_ENGINE_STEPS") ? std::atoi(std::getenv("FAKE_ENGINE_STEPS")) : 5;
  int step_ms =
      std::getenv("FAKE_ENGINE_STEP_MS") ? std::atoi(std::getenv("FAKE_ENGINE_STEP_MS")) : 100;
  std::string fail;
  bool crash = false, ignore_sigterm = false;
  std::unique_ptr<std::istream> behaviour = quantd::path_guard::OpenInputStream(
      (fs::path(flags["model_dir"]) / "fake_engine.json").string());
  if (behaviour) {
    std::stringstream text;
    text << behaviour->rdbuf();
    nlohmann::json j = nlohmann::json::parse(text.str(), nullptr, false);
    if (j.is_object()) {
      steps = j.value("steps", steps);
      step_ms = j.value("step_ms", step_ms);
      fail = j.value("fail", std::string());
      crash = j.value("crash", false);
      ignore_sigterm = j.value("ignore_sigterm", false);
    }
  }
  if (const char* run_log = std::getenv("FAKE_ENGINE_RUN_LOG")) {
    std::ofstream(run_log, std::ios::app) << flags["output_dir"] << " " << getpid() << "\n";
  }
  struct sigaction action = {};
  action.sa_handler = ignore_sigterm ? SIG_IGN : +[](int) { g_terminate = true; };
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);

  const fs::path out(flags["output_dir"]);
  Progress("loading", 0, 0, 0.0);
  Emit({{"event", "log"},
        {"level", "info"},
        {"message", "fake engine: " + std::to_string(steps) + " layers of " +
                        std::to_string(step_ms) + " ms"}});
  if (!flags["gpus"].empty()) {  // what a multi-GPU job was given (worker tests read it back)
    const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
    Emit({{"event", "log"},
          {"level", "info"},
          {"message", "fake engine: --gpus " + flags["gpus"] +
                          " on CUDA_VISIBLE_DEVICES=" + (visible != nullptr ? visible : "")}});
  }
  if (quantd::path_guard::MakeDirectories(out.string()) != 0) {
    Fail("cannot create " + out.string() + ": " + quantd::path_guard::ErrorText(errno));
    return 1;
  }
  const fs::path weights_temp = out / ".model.safetensors.quantd-tmp";
  for (int i = 1; i <= steps; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(step_ms));
    if (g_terminate) {
      quantd::path_guard::Unlink(weights_temp.string());
      Emit({{"event", "result"}, {"status", "cancelled"}});
      return 3;
    }
    // Each step reopens the file by its path: a directory swapped meanwhile is noticed.
    if (!Append(weights_temp, std::string(1024, static_cast<char>('a' + i % 26)))) {
      Fail("cannot write " + weights_temp.string() + ": " + quantd::path_guard::ErrorText(errno));
      return 1;
    }
    if (i == (steps + 1) / 2 && crash) std::abort();
    if (i == (steps + 1) / 2 && !fail.empty()) {
      quantd::path_guard::Unlink(weights_temp.string());
      Fail(fail);
      return 1;
    }
    Emit({{"event", "layer"},
          {"layer", i},
          {"layers_total", steps},
          {"seconds", step_ms / 1000.0},
          {"tokens", 1024}});
    Progress("quantizing", i, steps, 0.1 + 0.8 * i / steps);
  }
  Progress("exporting", steps, steps, 0.95);
  const fs::path weights_path = out / "model.safetensors";
  if (quantd::path_guard::Rename(weights_temp.string(), weights_path.string()) != 0) {
    Fail("cannot rename " + weights_temp.string() + ": " + quantd::path_guard::ErrorText(errno));
    return 1;
  }
  Emit({{"event", "artifact"},
        {"path", weights_path.string()},
        {"size_bytes", static_cast<int64_t>(fs::file_size(weights_path))},
        {"sha256", quantd::worker::Sha256File(weights_path.string()).value_or("")}});
  if (!WriteArtifact(
          out, "config.json",
          nlohmann::json({{"quantization_config", {{"bits", 4}, {"quant_method", "awq"}}},
                          {"source", flags["model_dir"]}})
              .dump(2)) ||
      !WriteArtifact(out, "quant_report.json", nlohmann::json({{"fake", true}}).dump())) {
    return 1;
  }
  Emit({{"event", "result"}, {"status", "succeeded"}});
  return 0;
}
