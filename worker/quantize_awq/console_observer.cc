#include "console_observer.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "nlohmann/json.hpp"
#include "quantd/engine/device_memory.h"

namespace quantd::quantize_awq {
namespace {

const char* LevelName(engine::LogLevel level) {
  switch (level) {
    case engine::LogLevel::kDebug:
      return "debug";
    case engine::LogLevel::kInfo:
      return "info";
    case engine::LogLevel::kWarning:
      return "warning";
    case engine::LogLevel::kError:
      return "error";
  }
  return "info";
}

// The result event's "quality" (docs/engine-events.md).
nlohmann::json QualityJson(const engine::QualitySummary& q) {
  nlohmann::json sizes = nlohmann::json::array();
  nlohmann::json kernels = nlohmann::json::array();
  for (const engine::TensorParallelFit& f : q.tensor_parallel) {
    if (!f.servable) continue;
    sizes.push_back(f.size);
    if (kernels.empty()) kernels = f.kernels;  // at the smallest size that serves it
  }
  nlohmann::json j = {{"source", q.source},
                      {"tokens_scored", q.tokens_scored},
                      {"perplexity_float", q.perplexity_float},
                      {"perplexity_quantized", q.perplexity_quantized},
                      {"perplexity_increase_percent", q.perplexity_increase_percent},
                      {"vllm_tensor_parallel_sizes", sizes},
                      {"vllm_kernels", kernels}};
  if (std::isfinite(q.awq_to_rtn_error_ratio)) {
    j["awq_to_rtn_error_ratio"] = q.awq_to_rtn_error_ratio;
  }
  return j;
}

}  // namespace

void ConsoleObserver::OnQuality(const engine::QualitySummary& q) {
  quality_ = q;
  std::string sizes;
  for (const engine::TensorParallelFit& f : q.tensor_parallel) {
    if (f.servable) absl::StrAppend(&sizes, sizes.empty() ? "" : ", ", f.size);
  }
  Say(absl::StrFormat(
      "quality: perplexity float %.3f, quantized %.3f (%+.2f %%) on %d %s tokens; "
      "vLLM tensor-parallel sizes: %s",
      q.perplexity_float, q.perplexity_quantized, q.perplexity_increase_percent, q.tokens_scored,
      q.source == "eval_text" ? "eval_text" : "held-out", sizes.empty() ? "none" : sizes));
}

void ConsoleObserver::Event(const std::string& json) {
  std::fputs(json.c_str(), out_);
  std::fputc('\n', out_);
  std::fflush(out_);
}

void ConsoleObserver::Say(const std::string& line) {
  FILE* f = events_ ? err_ : out_;
  std::fprintf(f, "[quantize-awq] %s\n", line.c_str());
  std::fflush(f);
}

void ConsoleObserver::LayerEvent(const engine::Progress& p) {
  const absl::Time now = absl::Now();
  nlohmann::json j = {{"event", "layer"},
                      {"layer", p.layers_done},
                      {"layers_total", p.layers_total},
                      {"seconds", absl::ToDoubleSeconds(now - layer_start_)},
                      {"tokens", p.tokens_per_layer}};
  layer_start_ = now;
  if (std::optional<engine::DeviceMemoryUse> memory = engine::EngineDeviceMemory()) {
    j["gpu_memory_bytes"] = memory->in_use_bytes;
    j["gpu_memory_peak_bytes"] = memory->peak_bytes;
  }
  Event(j.dump());
}

void ConsoleObserver::OnProgress(const engine::Progress& p) {
  const bool quantizing = p.phase == engine::Phase::kQuantizing;
  if (quantizing && p.layers_done == 0) layer_start_ = absl::Now();
  // A resumed run reports its kept layers done at once: not a layer of this run (no layer event).
  if (quantizing && p.resumed_at_layer > 0 && p.layers_done == p.resumed_at_layer &&
      last_layer_reported_ < p.resumed_at_layer) {
    last_layer_reported_ = p.layers_done;
    layer_start_ = absl::Now();
  }
  const bool layer_done = quantizing && p.layers_done > 0 && p.layers_done != last_layer_reported_;
  if (events_ && layer_done) LayerEvent(p);
  if (events_) {
    nlohmann::json j = {{"event", "progress"},
                        {"phase", engine::PhaseName(p.phase)},
                        {"layers_done", p.layers_done},
                        {"layers_total", p.layers_total},
                        {"fraction", p.fraction}};
    if (p.eta.has_value()) j["eta_seconds"] = absl::ToDoubleSeconds(*p.eta);
    if (p.resumed_at_layer > 0) j["resumed_at_layer"] = p.resumed_at_layer;
    Event(j.dump());
  }
  if (layer_done) {
    last_layer_reported_ = p.layers_done;
    std::string line = absl::StrFormat("layer %d/%d done (%.0f%%)", p.layers_done, p.layers_total,
                                       100.0 * p.fraction);
    if (p.eta.has_value()) {
      line += absl::StrFormat(", ETA %.1fs", absl::ToDoubleSeconds(*p.eta));
    }
    Say(line);
  }
}

void ConsoleObserver::OnLog(engine::LogLevel level, const std::string& message) {
  if (events_) {
    Event(nlohmann::json({{"event", "log"}, {"level", LevelName(level)}, {"message", message}})
              .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }
  Say(level == engine::LogLevel::kInfo ? message : std::string(LevelName(level)) + ": " + message);
}

void ConsoleObserver::OnArtifact(const engine::Artifact& a) {
  if (events_) {
    Event(nlohmann::json({{"event", "artifact"},
                          {"path", a.path},
                          {"size_bytes", a.size_bytes},
                          {"sha256", a.sha256}})
              .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }
}

void ConsoleObserver::Result(const absl::Status& status) {
  if (events_) {
    nlohmann::json j;
    if (status.ok()) {
      j = {{"event", "result"}, {"status", "succeeded"}};
    } else if (status.code() == absl::StatusCode::kCancelled) {
      j = {{"event", "result"}, {"status", "cancelled"}};
    } else {
      j = {{"event", "result"},
           {"status", "failed"},
           {"code", absl::StatusCodeToString(status.code())},
           {"code_number", static_cast<int>(status.code())},
           {"message", std::string(status.message())}};
    }
    if (quality_.has_value()) j["quality"] = QualityJson(*quality_);
    Event(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }
  if (!status.ok()) {
    std::fprintf(err_, "[quantize-awq] %s: %s\n",
                 status.code() == absl::StatusCode::kCancelled ? "cancelled" : "error",
                 std::string(status.message()).c_str());
    std::fflush(err_);
  }
}

}  // namespace quantd::quantize_awq
