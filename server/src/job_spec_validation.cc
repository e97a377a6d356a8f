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
  if (config.is_discarded() || !config.is_object()) {
    return FieldError("model_dir", absl::StrCat(Quoted(path.string()), " is not a JSON object"));
  }
  // Multimodal configs keep the language model's shape under text_config.
  if (config.contains("text_config") && config["text_config"].is_object() &&
      !config.contains("hidden_size")) {
    return config["text_config"];
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
  if (spec.bits() != 4) return FieldError("bits", absl::StrCat(spec.bits(), " is not 4"));
  if (!spec.has_group_size()) spec.set_group_size(128);
  if (spec.group_size() != 32 && spec.group_size() != 64 && spec.group_size() != 128) {
    return FieldError("group_size", absl::StrCat(spec.group_size(), " is not one of 32, 64, 128"));
  }
  if (!spec.has_zero_point()) spec.set_zero_point(true);
  if (!spec.zero_point()) return FieldError("zero_point", "false, but the GEMM layout needs true");
  if (spec.layout() == v1::WEIGHT_LAYOUT_UNSPECIFIED) spec.set_layout(v1::WEIGHT_LAYOUT_GEMM);
  if (!v1::WeightLayout_IsValid(spec.layout())) {
    return FieldError("layout", absl::StrCat(spec.layout(), " is not a WeightLayout"));
  }
  if (!spec.has_modules_to_not_convert())
    spec.mutable_modules_to_not_convert()->add_names("lm_head");
  for (const std::string& name : spec.modules_to_not_convert().names()) {
    if (name.empty() || name.find(',') != std::string::npos) {
      return FieldError("modules_to_not_convert",
                        absl::StrCat(Quoted(name), " is not a module path"));
    }
  }
  if (!spec.has_apply_chat_template()) spec.set_apply_chat_template(true);
  if (!spec.has_seed()) spec.set_seed(42);
  if (spec.output_dtype() == v1::OUTPUT_DTYPE_UNSPECIFIED) {
    spec.set_output_dtype(v1::OUTPUT_DTYPE_FLOAT16);
  }
  if (!v1::OutputDtype_IsValid(spec.output_dtype())) {
    return FieldError("output_dtype", absl::StrCat(spec.output_dtype(), " is not an OutputDtype"));
  }
  if (auto s = CheckRange("priority", spec.priority(), -1000, 1000); !s.ok()) return s;
  for (const auto& [key, value] : spec.labels()) {
    if (!ValidLabelKey(key)) {
      return FieldError("labels", absl::StrCat("key ", Quoted(key), " is not 1-63 of [a-z0-9_.-]"));
    }
  }
  // The config must be readable now: a job that cannot even be estimated would fail later.
  return EstimateGpuMemoryBytes(spec).status();
}

// Peak memory of a layer-by-layer AWQ run (AutoAWQ's scheme, which the engine follows):
//   one decoder layer's weights as fp32 working copies, three of them (original, scaled, quantized)
// + the cached inputs of every quantized Linear for all calibration tokens, fp32: per token
//   q/k/v, o and gate/up inputs (hidden each, with two copies for layer in/out) and down's input
//   (intermediate): (6 * hidden + 2 * intermediate) * 4 bytes
// + the embedding table in fp16 (to embed the calibration blocks)
// + 1 GiB for the CUDA context, cuBLAS workspaces and allocator slack.
// Calibration tokens: num_calib * max_seq_len, but no more than the calibration file could hold
// (2 bytes of text per token at the very least).
absl::StatusOr<int64_t> EstimateGpuMemoryBytes(const v1::JobSpec& spec) {
  absl::StatusOr<nlohmann::json> config = ReadModelConfig(spec.model_dir());
  if (!config.ok()) return config.status();
  auto get = [&](const char* key, int64_t fallback) -> absl::StatusOr<int64_t> {
    auto it = config->find(key);
    if (it == config->end() || !it->is_number_integer()) {
      if (fallback >= 0) return fallback;
      return FieldError("model_dir", absl::StrCat("config.json has no integer \"", key,
                                                  "\" (needed to size the job)"));
    }
    return it->get<int64_t>();
  };
  absl::StatusOr<int64_t> hidden = get("hidden_size", -1);
  absl::StatusOr<int64_t> layers = get("num_hidden_layers", -1);
  absl::StatusOr<int64_t> vocab = get("vocab_size", -1);
  for (const auto* v : {&hidden, &layers, &vocab}) {
    if (!v->ok()) return v->status();
  }
  absl::StatusOr<int64_t> inter = get("intermediate_size", 4 * *hidden);
  absl::StatusOr<int64_t> heads = get("num_attention_heads", 1);
  absl::StatusOr<int64_t> kv_heads = get("num_key_value_heads", *heads);
  if (*hidden <= 0 || *layers <= 0 || *vocab <= 0 || *heads <= 0) {
    return FieldError("model_dir", "config.json has a non-positive size");
  }
  const int64_t head_dim = *hidden / *heads;
  const int64_t layer_params =
      *hidden * (*hidden + 2 * *kv_heads * head_dim) + *hidden * *hidden + 3 * *hidden * *inter;
  std::error_code ec;
  const int64_t calib_bytes = static_cast<int64_t>(fs::file_size(spec.calib_jsonl(), ec));
  int64_t tokens = static_cast<int64_t>(spec.num_calib()) * spec.max_seq_len();
  if (!ec) tokens = std::min(tokens, std::max<int64_t>(calib_bytes / 2, spec.max_seq_len()));
  const int64_t weights = layer_params * 4 * 3;
  const int64_t activations = tokens * (6 * *hidden + 2 * *inter) * 4;
  const int64_t embeddings = *vocab * *hidden * 2;
  return weights + activations + embeddings + (int64_t{1} << 30);
}

}  // namespace quantd::server
