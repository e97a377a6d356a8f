#include "engine_events.h"

#include <cmath>
#include <map>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"
#include "nlohmann/json.hpp"

namespace quantd::worker {
namespace {

using Json = nlohmann::json;

absl::Status Bad(const std::string& line, const std::string& what) {
  return absl::InvalidArgumentError(
      absl::StrCat("engine event: ", what, " in line: ", line.substr(0, 200)));
}

std::string String(const Json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

absl::StatusOr<EngineEvent> ParseEngineEvent(const std::string& line) {
  Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Bad(line, "not a JSON object");
  const std::string type = String(j, "event");
  EngineEvent event;
  if (type == "progress") {
    static const std::map<std::string, v1::JobPhase> kPhases = {
        {"loading", v1::JOB_PHASE_LOADING},
        {"calibrating", v1::JOB_PHASE_CALIBRATING},
        {"quantizing", v1::JOB_PHASE_QUANTIZING},
        {"evaluating", v1::JOB_PHASE_EVALUATING},
        {"exporting", v1::JOB_PHASE_EXPORTING}};
    auto phase = kPhases.find(String(j, "phase"));
    if (phase == kPhases.end()) return Bad(line, "unknown \"phase\"");
    event.kind = EngineEvent::Kind::kProgress;
    event.progress.set_phase(phase->second);
    event.progress.set_layers_done(j.value("layers_done", 0));
    event.progress.set_layers_total(j.value("layers_total", 0));
    event.progress.set_fraction(j.value("fraction", 0.0));
    if (j.contains("resumed_at_layer") && j["resumed_at_layer"].is_number_integer()) {
      event.progress.set_resumed_at_layer(j["resumed_at_layer"].get<int32_t>());
    }
    if (j.contains("eta_seconds") && j["eta_seconds"].is_number()) {
      const double eta = j["eta_seconds"].get<double>();
      if (std::isfinite(eta) && eta >= 0) {
        *event.progress.mutable_eta() = google::protobuf::util::TimeUtil::MillisecondsToDuration(
            static_cast<int64_t>(eta * 1000));
      }
    }
    return event;
  }
  if (type == "log") {
    static const std::map<std::string, v1::LogLevel> kLevels = {{"debug", v1::LOG_LEVEL_DEBUG},
                                                                {"info", v1::LOG_LEVEL_INFO},
                                                                {"warning", v1::LOG_LEVEL_WARNING},
                                                                {"error", v1::LOG_LEVEL_ERROR}};
    auto level = kLevels.find(String(j, "level"));
    event.kind = EngineEvent::Kind::kLog;
    event.log.set_level(level == kLevels.end() ? v1::LOG_LEVEL_INFO : level->second);
    event.log.set_message(String(j, "message"));
    return event;
  }
  if (type == "artifact") {
    event.kind = EngineEvent::Kind::kArtifact;
    event.artifact.set_path(String(j, "path"));
    event.artifact.set_size_bytes(j.value("size_bytes", int64_t{-1}));
    event.artifact.set_sha256(String(j, "sha256"));
    if (event.artifact.path().empty() || event.artifact.size_bytes() < 0 ||
        event.artifact.sha256().size() != 64) {
      return Bad(line, "artifact needs \"path\", \"size_bytes\" and a 64-hex \"sha256\"");
    }
    return event;
  }
  if (type == "layer") {
    event.kind = EngineEvent::Kind::kLayer;
    LayerDone& layer = event.layer;
    const auto number = [&](const char* key) -> std::optional<double> {
      auto it = j.find(key);
      if (it == j.end() || !it->is_number()) return std::nullopt;
      return it->get<double>();
    };
    std::optional<double> index = number("layer"), total = number("layers_total");
    std::optional<double> seconds = number("seconds"), tokens = number("tokens");
    if (!index || !total || !seconds || !tokens || *index < 1 || *seconds < 0 || *tokens < 0) {
      return Bad(line,
                 "layer needs \"layer\" >= 1, \"layers_total\", \"seconds\" >= 0 and "
                 "\"tokens\" >= 0");
    }
    layer.layer = static_cast<int>(*index);
    layer.layers_total = static_cast<int>(*total);
    layer.seconds = *seconds;
    layer.tokens = static_cast<int64_t>(*tokens);
    if (std::optional<double> used = number("gpu_memory_bytes")) {
      layer.gpu_memory_bytes = static_cast<int64_t>(*used);
    }
    if (std::optional<double> peak = number("gpu_memory_peak_bytes")) {
      layer.gpu_memory_peak_bytes = static_cast<int64_t>(*peak);
    }
    return event;
  }
  if (type == "result") {
    event.kind = EngineEvent::Kind::kResult;
    const std::string status = String(j, "status");
    if (status == "succeeded") {
      event.result = v1::JOB_STATE_SUCCEEDED;
    } else if (status == "cancelled") {
      event.result = v1::JOB_STATE_CANCELLED;
    } else if (status == "failed") {
      event.result = v1::JOB_STATE_FAILED;
      event.error.set_code(j.value("code_number", 13));
      event.error.set_message(String(j, "message"));
    } else {
      return Bad(line, "unknown result \"status\"");
    }
    if (auto q = j.find("quality"); q != j.end()) {
      if (!q->is_object()) return Bad(line, "\"quality\" is not an object");
      v1::JobQuality quality;
      quality.set_source(q->value("source", ""));
      auto num = [&](const char* key) {
        auto it = q->find(key);
        return it != q->end() && it->is_number() ? it->get<double>() : 0.0;
      };
      quality.set_tokens_scored(static_cast<int64_t>(num("tokens_scored")));
      quality.set_perplexity_float(num("perplexity_float"));
      quality.set_perplexity_quantized(num("perplexity_quantized"));
      quality.set_perplexity_increase_percent(num("perplexity_increase_percent"));
      quality.set_awq_to_rtn_error_ratio(num("awq_to_rtn_error_ratio"));
      if (auto sizes = q->find("vllm_tensor_parallel_sizes");
          sizes != q->end() && sizes->is_array()) {
        for (const auto& v : *sizes) {
          if (v.is_number_integer()) quality.add_vllm_tensor_parallel_sizes(v.get<int>());
        }
      }
      if (auto kernels = q->find("vllm_kernels"); kernels != q->end() && kernels->is_array()) {
        for (const auto& v : *kernels) {
          if (v.is_string()) quality.add_vllm_kernels(v.get<std::string>());
        }
      }
      event.quality = std::move(quality);
    }
    return event;
  }
  return Bad(line, absl::StrCat("unknown \"event\" \"", type, "\""));
}

}  // namespace quantd::worker
