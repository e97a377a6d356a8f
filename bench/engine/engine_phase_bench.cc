// Prints CPU time and wall time per phase of one Quantize() run, as a table.
//
//   engine_phase_bench MODEL_DIR CALIB_JSONL [--num_calib N] [--max_seq_len N] [--eval_text F]
//                      [--chat_template] [--system_prompt S] [--output_dir DIR]
//                      [--attention_trials_use_float_kv]
//
// --attention_trials_use_float_kv reproduces AutoAWQ run under transformers 5 (its KV-cache leak
// into the attention group's trials) for comparisons with AutoAWQ's numbers (docs/quality.md).
//
// Defaults are the tiny-qwen2-wp acceptance run: 128 texts, 512-token blocks, no chat template.
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "quantd/engine/quantize.h"

namespace {

double CpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

double WallSeconds() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Attributes CPU and wall time to the phase that was current when it was spent.
class PhaseTimer : public quantd::engine::EngineObserver {
 public:
  PhaseTimer() : cpu_(CpuSeconds()), wall_(WallSeconds()) {}
  void OnProgress(const quantd::engine::Progress& p) override { Switch(p.phase); }
  void OnLog(quantd::engine::LogLevel, const std::string& message) override {
    std::fprintf(stderr, "  %s\n", message.c_str());
  }
  void Finish() { Switch(current_); }

  struct Row {
    double cpu = 0, wall = 0;
  };
  std::vector<std::pair<std::string, Row>> rows;

 private:
  void Switch(quantd::engine::Phase next) {
    const double cpu = CpuSeconds(), wall = WallSeconds();
    const std::string name = quantd::engine::PhaseName(current_);
    bool found = false;
    for (auto& [n, r] : rows) {
      if (n == name) {
        r.cpu += cpu - cpu_;
        r.wall += wall - wall_;
        found = true;
      }
    }
    if (!found) rows.push_back({name, {cpu - cpu_, wall - wall_}});
    cpu_ = cpu;
    wall_ = wall;
    current_ = next;
  }
  quantd::engine::Phase current_ = quantd::engine::Phase::kLoading;
  double cpu_, wall_;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr,
                 "usage: engine_phase_bench MODEL_DIR CALIB_JSONL [--num_calib N] "
                 "[--max_seq_len N] [--eval_text FILE] [--chat_template] [--system_prompt S] "
                 "[--output_dir DIR] [--attention_trials_use_float_kv]\n");
    return 2;
  }
  quantd::engine::QuantizeOptions o;
  o.model_dir = argv[1];
  o.calib_jsonl = argv[2];
  o.num_calib = 128;
  o.max_seq_len = 512;
  o.apply_chat_template = false;
  o.backend = quantd::engine::BackendKind::kCpu;
  o.output_dir = (std::filesystem::temp_directory_path() / "engine_phase_bench_out").string();
  for (int i = 3; i < argc; ++i) {
    const std::string a = argv[i];
    const char* next = i + 1 < argc ? argv[i + 1] : "";
    if (a == "--num_calib")
      o.num_calib = std::atoi(next), ++i;
    else if (a == "--max_seq_len")
      o.max_seq_len = std::atoi(next), ++i;
    else if (a == "--eval_text")
      o.eval_text = next, ++i;
    else if (a == "--output_dir")
      o.output_dir = next, ++i;
    else if (a == "--chat_template")
      o.apply_chat_template = true;
    else if (a == "--system_prompt")
      o.system_prompt = next, ++i;
    else if (a == "--attention_trials_use_float_kv")
      o.attention_trials_use_float_kv = true;
    else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  PhaseTimer timer;
  absl::StatusOr<quantd::engine::QuantizeResult> r = quantd::engine::Quantize(o, &timer, nullptr);
  timer.Finish();
  if (!r.ok()) {
    std::fprintf(stderr, "failed: %s\n", std::string(r.status().message()).c_str());
    return 1;
  }
  double cpu_total = 0, wall_total = 0;
  std::printf("| phase | CPU s | wall s |\n|---|---:|---:|\n");
  for (const auto& [name, row] : timer.rows) {
    std::printf("| %s | %.2f | %.2f |\n", name.c_str(), row.cpu, row.wall);
    cpu_total += row.cpu;
    wall_total += row.wall;
  }
  std::printf("| total | %.2f | %.2f |\n", cpu_total, wall_total);
  return 0;
}
