#include "job_spec_validation.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"

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
                        absl::StrCat("\"", name, "\" is not a module path"));
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
  if (!spec.has_gpus()) spec.set_gpus(1);
  if (spec.gpus() < 1 || spec.gpus() > kMaxJobGpus) {
    return FieldError("gpus", absl::StrCat(spec.gpus(), " is out of range 1..", kMaxJobGpus,
                                           " (GPUs of one worker the job runs on)"));
  }
  for (const auto& [key, value] : spec.labels()) {
    if (!ValidLabelKey(key)) {
      return FieldError("labels", absl::StrCat("key \"", key, "\" is not 1-63 of [a-z0-9_.-]"));
    }
    if (value.size() > 256) {
      return FieldError("labels", absl::StrCat("value of \"", key, "\" is over 256 characters"));
    }
  }
  // The config must be readable now: a job that cannot even be planned would fail later.
  return JobMemoryShapeOf(spec).status();
}

absl::StatusOr<JobMemoryShape> JobMemoryShapeOf(const v1::JobSpec& spec) {
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
  if (*hidden <= 0 || *layers <= 0 || *vocab <= 0 || *heads <= 0 || *kv_heads <= 0 || *inter <= 0) {
    return FieldError("model_dir", "config.json has a non-positive size");
  }
  absl::StatusOr<int64_t> head_dim = get("head_dim", *hidden / *heads);
  if (*head_dim <= 0) return FieldError("model_dir", "config.json has a non-positive head_dim");
  // The dtype the engine computes in, read as the engine reads it: transformers 5's "dtype", else
  // "torch_dtype", else float32.
  std::string dtype = "float32";
  for (const char* key : {"torch_dtype", "dtype"}) {
    auto it = config->find(key);
    if (it != config->end() && it->is_string()) dtype = it->get<std::string>();
  }
  JobMemoryShape shape;
  shape.geometry.hidden_size = *hidden;
  shape.geometry.intermediate_size = *inter;
  shape.geometry.num_attention_heads = *heads;
  shape.geometry.num_key_value_heads = *kv_heads;
  shape.geometry.head_dim = *head_dim;
  shape.geometry.dtype_bytes = dtype == "float32" ? 4 : 2;
  std::string architecture = "model";
  if (auto it = config->find("architectures");
      it != config->end() && it->is_array() && !it->empty() && (*it)[0].is_string()) {
    architecture = (*it)[0].get<std::string>();
  }
  shape.model = absl::StrCat(architecture, " (hidden ", *hidden, ", intermediate ", *inter, ")");
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
