#include "job_spec_validation.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"
#include "quantd/engine/format_options.h"

namespace quantd::server {
namespace {

namespace fs = std::filesystem;

absl::Status FieldError(const std::string& field, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("spec.", field, ": ", what));
}

bool WithinRoot(const fs::path& path, const fs::path& root) {
  auto [root_end, path_it] = std::mismatch(root.begin(), root.end(), path.begin(), path.end());
  return root_end == root.end() || (std::next(root_end) == root.end() && root_end->empty());
}

// Required absolute path inside the allowed roots; returns the resolved path in `resolved`.
absl::Status CheckPath(const PathPolicy& policy, const std::string& field, const std::string& value,
                       fs::path* resolved) {
  if (value.empty()) return FieldError(field, "required (an absolute path)");
  fs::path path(value);
  if (!path.is_absolute())
    return FieldError(field, absl::StrCat("\"", value, "\" is not absolute"));
  std::error_code ec;
  *resolved = fs::weakly_canonical(path, ec);
  if (ec) *resolved = path.lexically_normal();
  if (policy.allowed_roots.empty()) return absl::OkStatus();
  for (const std::string& root : policy.allowed_roots) {
    fs::path canonical_root = fs::weakly_canonical(fs::path(root), ec);
    if (ec) canonical_root = fs::path(root).lexically_normal();
    if (WithinRoot(*resolved, canonical_root)) return absl::OkStatus();
  }
  return FieldError(field, absl::StrCat("\"", value, "\" is outside the allowed roots (",
                                        absl::StrJoin(policy.allowed_roots, ", "), ")"));
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
  if (!in) return FieldError("model_dir", absl::StrCat(path.string(), " is missing or unreadable"));
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json config = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (config.is_discarded() || !config.is_object()) {
    return FieldError("model_dir", absl::StrCat(path.string(), " is not a JSON object"));
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
  fs::path model_dir, output_dir, calib, eval;
  if (auto s = CheckPath(policy, "model_dir", spec.model_dir(), &model_dir); !s.ok()) return s;
  if (!fs::is_directory(model_dir)) {
    return FieldError("model_dir", absl::StrCat("\"", spec.model_dir(), "\" is not a directory"));
  }
  if (!fs::is_regular_file(model_dir / "config.json")) {
    return FieldError("model_dir", absl::StrCat("\"", spec.model_dir(),
                                                "\" has no config.json (expected a "
                                                "Hugging Face model directory)"));
  }
  if (auto s = CheckPath(policy, "output_dir", spec.output_dir(), &output_dir); !s.ok()) return s;
  if (output_dir == model_dir) {
    return FieldError("output_dir", "must differ from model_dir (the model is never modified)");
  }
  if (auto s = CheckPath(policy, "calib_jsonl", spec.calib_jsonl(), &calib); !s.ok()) return s;
  if (!fs::is_regular_file(calib)) {
    return FieldError("calib_jsonl", absl::StrCat("\"", spec.calib_jsonl(), "\" is not a file"));
  }
  if (!spec.eval_text().empty()) {
    if (auto s = CheckPath(policy, "eval_text", spec.eval_text(), &eval); !s.ok()) return s;
    if (!fs::is_regular_file(eval)) {
      return FieldError("eval_text", absl::StrCat("\"", spec.eval_text(), "\" is not a file"));
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
  if (spec.output_dtype() == v1::OUTPUT_DTYPE_UNSPECIFIED) {
    spec.set_output_dtype(v1::OUTPUT_DTYPE_FLOAT16);
  }
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
  engine::QuantFormat format;
  format.format = spec.layout() == v1::WEIGHT_LAYOUT_COMPRESSED_TENSORS
                      ? engine::CheckpointFormat::kCompressedTensors
                      : engine::CheckpointFormat::kAwqGemm;
  format.bits = spec.bits();
  format.group_size = spec.group_size();
  format.zero_point = spec.zero_point();
  format.output_dtype = dtype(spec.output_dtype());
  if (spec.scale_dtype() != v1::OUTPUT_DTYPE_UNSPECIFIED) {
    format.scale_dtype = dtype(spec.scale_dtype());
  }
  if (absl::Status s = engine::CheckQuantFormat(
          format, {"spec.layout", "spec.bits", "spec.group_size", "spec.zero_point",
                   "spec.output_dtype", "spec.scale_dtype"});
      !s.ok()) {
    return s;
  }
  spec.set_scale_dtype(engine::ScaleDtypeOf(format) == engine::OutputDtype::kBFloat16
                           ? v1::OUTPUT_DTYPE_BFLOAT16
                           : v1::OUTPUT_DTYPE_FLOAT16);
  if (!spec.has_modules_to_not_convert())
    spec.mutable_modules_to_not_convert()->add_names("lm_head");
  const std::vector<std::string> modules(spec.modules_to_not_convert().names().begin(),
                                         spec.modules_to_not_convert().names().end());
  if (absl::Status s = engine::CheckModulePatterns(modules, "spec.modules_to_not_convert");
      !s.ok()) {
    return s;
  }
  if (spec.has_max_perplexity_increase_percent()) {
    if (absl::Status s = engine::CheckPerplexityThreshold(spec.max_perplexity_increase_percent(),
                                                          "spec.max_perplexity_increase_percent");
        !s.ok()) {
      return s;
    }
    if (auto s = CheckRange("max_perplexity_increase_percent",
                            static_cast<int64_t>(spec.max_perplexity_increase_percent()), 0, 1000);
        !s.ok()) {
      return s;
    }
  }
  if (!spec.has_apply_chat_template()) spec.set_apply_chat_template(true);
  if (!spec.has_seed()) spec.set_seed(42);
  if (auto s = CheckRange("priority", spec.priority(), -1000, 1000); !s.ok()) return s;
  for (const auto& [key, value] : spec.labels()) {
    if (!ValidLabelKey(key)) {
      return FieldError("labels", absl::StrCat("key \"", key, "\" is not 1-63 of [a-z0-9_.-]"));
    }
    if (value.size() > 256) {
      return FieldError("labels", absl::StrCat("value of \"", key, "\" is over 256 characters"));
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
