#include "job_spec_validation.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "bounded_text.h"
#include "nlohmann/json.hpp"
#include "path_check.h"
#include "quantd/engine/format_options.h"
#include "quantd/engine/model_support.h"

namespace quantd::server {
namespace {

namespace fs = std::filesystem;

absl::Status FieldError(const std::string& field, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("spec.", field, ": ", what));
}

absl::Status CheckRange(const std::string& field, int64_t value, int64_t lo, int64_t hi) {
  if (value < lo || value > hi) {
    return FieldError(field, absl::StrCat(value, " is out of range ", lo, "..", hi));
  }
  return absl::OkStatus();
}

bool ValidLabelKey(const std::string& key) {
  if (key.empty() || key.size() > 63) return false;
  return std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
  });
}

absl::StatusOr<nlohmann::json> ReadModelConfig(const std::string& model_dir) {
  const fs::path path = fs::path(model_dir) / "config.json";
  std::ifstream in(path);
  if (!in)
    return FieldError("model_dir",
                      absl::StrCat(Quoted(path.string()), " is missing or unreadable"));
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json config = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (config.is_discarded()) {
    return FieldError("model_dir", absl::StrCat(Quoted(path.string()), " is not valid JSON"));
  }
  if (!config.is_object()) {
    return FieldError("model_dir", absl::StrCat(Quoted(path.string()), " is not a JSON object"));
  }
  return config;
}

}  // namespace

absl::Status ValidateAndFillSpec(const PathPolicy& policy, v1::JobSpec& spec) {
  const std::vector<std::string>& roots = policy.allowed_roots;
  absl::StatusOr<std::string> model_dir =
      CheckPathField(roots, "model_dir", spec.model_dir(), PathKind::kExistingDirectory);
  if (!model_dir.ok()) return model_dir.status();
  if (absl::StatusOr<std::string> config =
          CheckPathField(roots, "model_dir", *model_dir + "/config.json", PathKind::kExistingFile);
      !config.ok()) {
    return FieldError("model_dir", absl::StrCat(Quoted(spec.model_dir()),
                                                " has no readable config.json (expected a "
                                                "Hugging Face model directory): ",
                                                config.status().message()));
  }
  absl::StatusOr<std::string> output_dir =
      CheckPathField(roots, "output_dir", spec.output_dir(), PathKind::kOutputDirectory);
  if (!output_dir.ok()) return output_dir.status();
  if (*output_dir == *model_dir) {
    return FieldError("output_dir", "must differ from model_dir (the model is never modified)");
  }
  if (absl::StatusOr<std::string> calib =
          CheckPathField(roots, "calib_jsonl", spec.calib_jsonl(), PathKind::kExistingFile);
      !calib.ok()) {
    return calib.status();
  }
  if (!spec.eval_text().empty()) {
    if (absl::StatusOr<std::string> eval =
            CheckPathField(roots, "eval_text", spec.eval_text(), PathKind::kExistingFile);
        !eval.ok()) {
      return eval.status();
    }
  }
  if (!spec.has_num_calib()) spec.set_num_calib(8192);
  if (auto s = CheckRange("num_calib", spec.num_calib(), 1, 1048576); !s.ok()) return s;
  if (!spec.has_max_seq_len()) spec.set_max_seq_len(2048);
  if (auto s = CheckRange("max_seq_len", spec.max_seq_len(), 16, 32768); !s.ok()) return s;
  if (!spec.has_bits()) spec.set_bits(4);
  if (!spec.has_group_size()) spec.set_group_size(128);
  if (!spec.has_zero_point()) spec.set_zero_point(true);
  if (spec.layout() == v1::WEIGHT_LAYOUT_UNSPECIFIED) spec.set_layout(v1::WEIGHT_LAYOUT_GEMM);
  if (!v1::WeightLayout_IsValid(spec.layout())) {
    return FieldError("layout", absl::StrCat(spec.layout(), " is not a WeightLayout"));
  }
  // OUTPUT_DTYPE_UNSPECIFIED stays: the engine's rule decides (float16, bfloat16 for families
  // whose activations overflow float16).
  if (!v1::OutputDtype_IsValid(spec.output_dtype())) {
    return FieldError("output_dtype", absl::StrCat(spec.output_dtype(), " is not an OutputDtype"));
  }
  if (!v1::OutputDtype_IsValid(spec.scale_dtype())) {
    return FieldError("scale_dtype", absl::StrCat(spec.scale_dtype(), " is not an OutputDtype"));
  }
  // The formats' rules, shared with quantize-awq and the engine (format_options.h).
  auto dtype = [](v1::OutputDtype d) {
    return d == v1::OUTPUT_DTYPE_BFLOAT16 ? engine::OutputDtype::kBFloat16
                                          : engine::OutputDtype::kFloat16;
  };
  auto proto_dtype = [](engine::OutputDtype d) {
    return d == engine::OutputDtype::kBFloat16 ? v1::OUTPUT_DTYPE_BFLOAT16
                                               : v1::OUTPUT_DTYPE_FLOAT16;
  };
  engine::QuantFormat format;
  format.format = spec.layout() == v1::WEIGHT_LAYOUT_COMPRESSED_TENSORS
                      ? engine::CheckpointFormat::kCompressedTensors
                      : engine::CheckpointFormat::kAwqGemm;
  format.bits = spec.bits();
  format.group_size = spec.group_size();
  format.zero_point = spec.zero_point();
  if (spec.output_dtype() != v1::OUTPUT_DTYPE_UNSPECIFIED) {
    format.output_dtype = dtype(spec.output_dtype());
  } else {
    // The engine's rule for this model, so that a compressed-tensors scale dtype is checked
    // against the dtype the output will have.
    absl::StatusOr<nlohmann::json> config = ReadModelConfig(spec.model_dir());
    if (!config.ok()) return config.status();
    absl::StatusOr<engine::OutputDtype> resolved =
        engine::DefaultOutputDtype(*config, (fs::path(spec.model_dir()) / "config.json").string());
    if (!resolved.ok()) return FieldError("model_dir", std::string(resolved.status().message()));
    format.output_dtype = *resolved;
  }
  if (spec.scale_dtype() != v1::OUTPUT_DTYPE_UNSPECIFIED) {
    format.scale_dtype = dtype(spec.scale_dtype());
  }
  if (absl::Status s = engine::CheckQuantFormat(
          format, {"spec.layout", "spec.bits", "spec.group_size", "spec.zero_point",
                   "spec.output_dtype", "spec.scale_dtype"});
      !s.ok()) {
    return s;
  }
  spec.set_scale_dtype(proto_dtype(engine::ScaleDtypeOf(format)));
  if (!spec.has_modules_to_not_convert())
    spec.mutable_modules_to_not_convert()->add_names("lm_head");
  const std::vector<std::string> modules(spec.modules_to_not_convert().names().begin(),
                                         spec.modules_to_not_convert().names().end());
  if (absl::Status s =
          engine::CheckModulePatterns(modules, "spec.modules_to_not_convert",
                                      [](std::string_view name) { return Quoted(name); });
      !s.ok()) {
    return s;
  }
  if (spec.has_max_perplexity_increase_percent()) {
    if (absl::Status s = engine::CheckPerplexityThreshold(spec.max_perplexity_increase_percent(),
                                                          "spec.max_perplexity_increase_percent");
        !s.ok()) {
      return s;
    }
    if (spec.max_perplexity_increase_percent() > 1000.0) {
      return FieldError(
          "max_perplexity_increase_percent",
          absl::StrCat(spec.max_perplexity_increase_percent(), " is out of range 0..1000"));
    }
  }
  if (!spec.has_apply_chat_template()) spec.set_apply_chat_template(true);
  if (!spec.has_seed()) spec.set_seed(42);
  if (auto s = CheckRange("priority", spec.priority(), -1000, 1000); !s.ok()) return s;
  if (!spec.has_gpus()) spec.set_gpus(1);
  if (spec.gpus() < 1 || spec.gpus() > kMaxJobGpus) {
    return FieldError("gpus", absl::StrCat(spec.gpus(), " is out of range 1..", kMaxJobGpus,
                                           " (GPUs of one worker the job runs on)"));
  }
  for (const auto& [key, value] : spec.labels()) {
    if (!ValidLabelKey(key)) {
      return FieldError("labels", absl::StrCat("key ", Quoted(key), " is not 1-63 of [a-z0-9_.-]"));
    }
  }
  // The config must describe a model the engine supports (the engine's own check and message,
  // with the supported list) and be planned: a job that cannot would fail on a worker.
  return JobMemoryShapeOf(spec).status();
}

absl::StatusOr<JobMemoryShape> JobMemoryShapeOf(const v1::JobSpec& spec) {
  absl::StatusOr<nlohmann::json> config = ReadModelConfig(spec.model_dir());
  if (!config.ok()) return config.status();
  // The engine's own reading of the config (families, MoE, compute dtype): the plan the scheduler
  // places by is the one the engine chunks by.
  const std::string path = (fs::path(spec.model_dir()) / "config.json").string();
  absl::StatusOr<memory_plan::LayerGeometry> geometry = engine::ModelMemoryGeometry(*config, path);
  if (!geometry.ok()) return FieldError("model_dir", std::string(geometry.status().message()));
  JobMemoryShape shape;
  shape.geometry = *geometry;
  std::string architecture = "model";
  if (auto it = config->find("architectures");
      it != config->end() && it->is_array() && !it->empty() && (*it)[0].is_string()) {
    architecture = (*it)[0].get<std::string>();
  } else if (auto mt = config->find("model_type"); mt != config->end() && mt->is_string()) {
    architecture = mt->get<std::string>();
  }
  shape.model = geometry->num_experts > 0
                    ? absl::StrCat(architecture, " (hidden ", geometry->hidden_size, ", ",
                                   geometry->num_experts, " experts of ",
                                   geometry->expert_intermediate_size, ")")
                    : absl::StrCat(architecture, " (hidden ", geometry->hidden_size,
                                   ", intermediate ", geometry->intermediate_size, ")");
  const int64_t len = spec.max_seq_len();
  int64_t tokens = static_cast<int64_t>(spec.num_calib()) * len;
  std::error_code ec;
  const int64_t calib_bytes = static_cast<int64_t>(fs::file_size(spec.calib_jsonl(), ec));
  if (!ec) {
    const int64_t per_text = spec.apply_chat_template() ? kChatTemplateTokensPerText : 0;
    tokens = std::min(tokens, calib_bytes / 2 + per_text * spec.num_calib());
  }
  shape.len = len;
  shape.blocks = memory_plan::BlocksPerRank(
      std::max<int64_t>(1, tokens / std::max<int64_t>(1, len)), std::max(1, spec.gpus()));
  return shape;
}

}  // namespace quantd::server
