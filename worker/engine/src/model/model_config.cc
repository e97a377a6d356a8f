#include "model/model_config.h"

#include <algorithm>
#include <filesystem>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "io/json_file.h"
#include "io/status_macros.h"
#include "model/architecture.h"
#include "model/families/family_parsing.h"
#include "model/registry.h"

namespace quantd::engine {
namespace {

absl::Status Unsupported(std::string_view path, std::string_view field, std::string_view what) {
  return absl::FailedPreconditionError(
      absl::StrCat(std::string(path), ": field '", std::string(field), "': ", std::string(what)));
}

// A required positive integer field that fits in int.
absl::StatusOr<int> PositiveInt(const JsonFields& f, const char* key) {
  QUANTD_ASSIGN_OR_RETURN(int64_t v, f.RequiredInt(key));
  if (v <= 0 || v > (int64_t{1} << 30)) {
    return f.Error(key, absl::StrCat("expected a positive integer, found ", v));
  }
  return static_cast<int>(v);
}

absl::StatusOr<DType> ParseDType(const JsonFields& f, const char* key, const std::string& name) {
  if (name == "float16" || name == "torch.float16" || name == "half") return DType::kF16;
  if (name == "bfloat16" || name == "torch.bfloat16") return DType::kBF16;
  if (name == "float32" || name == "torch.float32" || name == "float") return DType::kF32;
  return f.Error(key, absl::StrCat("unsupported dtype \"", name,
                                   "\" (expected float16, bfloat16 or float32)"));
}

// RoPE scaling from a transformers 4.x "rope_scaling" object or a 5.x "rope_parameters" object.
absl::Status ParseRope(const nlohmann::json& rope, const std::string& field, std::string_view path,
                       ModelConfig& config) {
  if (!rope.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(std::string(path), ": field '", field,
                                                   "': expected an object, found ", rope.dump()));
  }
  JsonFields f(rope, path, field + ".");
  QUANTD_ASSIGN_OR_RETURN(std::optional<double> theta, f.OptionalNumber("rope_theta"));
  if (theta.has_value()) config.rope_theta = *theta;
  QUANTD_ASSIGN_OR_RETURN(std::optional<std::string> type, f.OptionalString("rope_type"));
  if (!type.has_value()) {
    QUANTD_ASSIGN_OR_RETURN(type, f.OptionalString("type"));  // Older spelling.
  }
  std::string t = type.value_or("default");
  RopeScaling& s = config.rope_scaling;
  if (t == "default") {
    s.type = RopeScaling::Type::kDefault;
    return absl::OkStatus();
  }
  if (t != "linear" && t != "llama3") {
    return Unsupported(path, f.FieldName("rope_type"),
                       absl::StrCat("RoPE type \"", t,
                                    "\" is not supported (supported: default, linear, llama3)"));
  }
  QUANTD_ASSIGN_OR_RETURN(std::optional<double> factor, f.OptionalNumber("factor"));
  if (!factor.has_value() || *factor <= 0) {
    return f.Error("factor", absl::StrCat("RoPE type ", t, " needs a positive factor"));
  }
  s.factor = *factor;
  if (t == "linear") {
    s.type = RopeScaling::Type::kLinear;
    return absl::OkStatus();
  }
  s.type = RopeScaling::Type::kLlama3;
  QUANTD_ASSIGN_OR_RETURN(std::optional<double> low, f.OptionalNumber("low_freq_factor"));
  QUANTD_ASSIGN_OR_RETURN(std::optional<double> high, f.OptionalNumber("high_freq_factor"));
  QUANTD_ASSIGN_OR_RETURN(std::optional<int64_t> original,
                          f.OptionalInt("original_max_position_embeddings"));
  if (!low || !high || !original) {
    return f.Error("low_freq_factor",
                   "RoPE type llama3 needs low_freq_factor, high_freq_factor and "
                   "original_max_position_embeddings");
  }
  if (*low <= 0 || *high <= *low || *original <= 0) {
    return f.Error("high_freq_factor",
                   "llama3 RoPE needs 0 < low_freq_factor < high_freq_factor and a positive "
                   "original_max_position_embeddings");
  }
  s.low_freq_factor = *low;
  s.high_freq_factor = *high;
  s.original_max_position_embeddings = static_cast<int>(*original);
  return absl::OkStatus();
}

// Multimodal checkpoints (a vision tower beside a language model) are refused: the reason, and
// what the language model is when quantd knows its family.
std::string MultimodalHint(const nlohmann::json& json) {
  auto text = json.find("text_config");
  if (text == json.end() || !text->is_object()) return "";
  std::string family;
  if (auto t = text->find("model_type"); t != text->end() && t->is_string()) {
    if (const ArchitectureSpec* a = FindArchitectureByModelType(t->get<std::string>())) {
      family = absl::StrCat(" (its language model, model_type \"", t->get<std::string>(), "\", is ",
                            a->hf_class, ", which is supported)");
    }
  }
  return absl::StrCat(
      ": it is a multimodal checkpoint", family,
      ". quantd quantizes text-only checkpoints; save the language model alone as a *ForCausalLM "
      "checkpoint and quantize that (docs/architectures.md, \"Multimodal checkpoints\")");
}

// The family's record: from "architectures" when present, else from "model_type" (configs written
// by hand or by tools that drop "architectures").
absl::StatusOr<const ArchitectureSpec*> FindFamily(const nlohmann::json& json, const JsonFields& f,
                                                   std::string_view path, std::string* hf_class) {
  auto arch_it = json.find("architectures");
  if (arch_it != json.end() && !arch_it->is_null()) {
    if (!arch_it->is_array() || arch_it->empty() || !(*arch_it)[0].is_string()) {
      return f.Error("architectures", absl::StrCat("expected a list with the model class, one of ",
                                                   SupportedArchitectureList()));
    }
    *hf_class = (*arch_it)[0].get<std::string>();
    const ArchitectureSpec* spec = FindArchitecture(*hf_class);
    if (spec == nullptr || arch_it->size() != 1) {
      return Unsupported(
          path, "architectures",
          absl::StrCat("model class ", arch_it->dump(), " is not supported", MultimodalHint(json),
                       "; supported: ", SupportedArchitectureList()));
    }
    return spec;
  }
  QUANTD_ASSIGN_OR_RETURN(std::optional<std::string> model_type, f.OptionalString("model_type"));
  if (!model_type.has_value()) {
    return f.Error("architectures",
                   absl::StrCat("missing, and there is no model_type either; expected one of ",
                                SupportedArchitectureList()));
  }
  const ArchitectureSpec* spec = FindArchitectureByModelType(*model_type);
  if (spec == nullptr) {
    return Unsupported(
        path, "model_type",
        absl::StrCat("model_type \"", *model_type, "\" is not supported", MultimodalHint(json),
                     "; supported: ", SupportedArchitectureList()));
  }
  *hf_class = spec->hf_class;
  return spec;
}

}  // namespace

int ModelConfig::max_sliding_window() const {
  int w = 0;
  for (const LayerAttention& a : layer_attention) w = std::max(w, a.sliding_window);
  return w;
}

absl::StatusOr<ModelConfig> ParseModelConfig(const nlohmann::json& json, std::string_view path) {
  if (!json.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(path), ": expected a JSON object, found ", json.type_name()));
  }
  JsonFields f(json, path);
  ModelConfig config;
  config.raw = json;
  QUANTD_ASSIGN_OR_RETURN(config.arch, FindFamily(json, f, path, &config.architecture_name));
  const ArchitectureSpec& arch = *config.arch;

  // Remote code cannot run here; a model whose config asks for it is another architecture —
  // unless it is the code of a family transformers has since integrated (Phi-3's first
  // checkpoints), which transformers itself loads natively.
  if (const nlohmann::json* remote = f.Find("auto_map")) {
    const bool native = remote->is_object() && arch.native_remote_code[0] != '\0' &&
                        remote->value("AutoModelForCausalLM", "") == arch.native_remote_code;
    if (!native) {
      return Unsupported(
          path, "auto_map",
          "the model needs custom (remote) code, which quantd cannot run; supported: " +
              SupportedArchitectureList());
    }
  }

  QUANTD_ASSIGN_OR_RETURN(config.hidden_size, PositiveInt(f, "hidden_size"));
  QUANTD_ASSIGN_OR_RETURN(config.intermediate_size, PositiveInt(f, "intermediate_size"));
  QUANTD_ASSIGN_OR_RETURN(config.num_hidden_layers, PositiveInt(f, "num_hidden_layers"));
  QUANTD_ASSIGN_OR_RETURN(config.num_attention_heads, PositiveInt(f, "num_attention_heads"));
  QUANTD_ASSIGN_OR_RETURN(config.vocab_size, PositiveInt(f, "vocab_size"));
  if (f.Has("num_key_value_heads")) {
    QUANTD_ASSIGN_OR_RETURN(config.num_key_value_heads, PositiveInt(f, "num_key_value_heads"));
  } else {
    config.num_key_value_heads = config.num_attention_heads;
  }
  if (config.num_attention_heads % config.num_key_value_heads != 0) {
    return f.Error("num_key_value_heads",
                   absl::StrCat("must divide num_attention_heads (", config.num_attention_heads,
                                "), found ", config.num_key_value_heads));
  }
  if (f.Has("head_dim")) {
    QUANTD_ASSIGN_OR_RETURN(config.head_dim, PositiveInt(f, "head_dim"));
  } else {
    if (config.hidden_size % config.num_attention_heads != 0) {
      return f.Error("num_attention_heads",
                     absl::StrCat("must divide hidden_size (", config.hidden_size, "), found ",
                                  config.num_attention_heads));
    }
    config.head_dim = config.hidden_size / config.num_attention_heads;
  }
  if (config.head_dim % 2 != 0) {
    return f.Error("head_dim",
                   absl::StrCat("RoPE needs an even head dimension, found ", config.head_dim));
  }
  if (f.Has("max_position_embeddings")) {
    QUANTD_ASSIGN_OR_RETURN(config.max_position_embeddings,
                            PositiveInt(f, "max_position_embeddings"));
  }
  QUANTD_ASSIGN_OR_RETURN(std::optional<double> eps, f.OptionalNumber("rms_norm_eps"));
  if (eps.has_value()) {
    if (!(*eps > 0)) return f.Error("rms_norm_eps", "expected a positive number");
    config.rms_norm_eps = *eps;
  }
  QUANTD_ASSIGN_OR_RETURN(std::optional<bool> tied, f.OptionalBool("tie_word_embeddings"));
  config.tie_word_embeddings = tied.value_or(arch.tied_embeddings_by_default);
  QUANTD_ASSIGN_OR_RETURN(std::optional<bool> mlp_bias, f.OptionalBool("mlp_bias"));
  if (mlp_bias.value_or(false)) {
    return Unsupported(path, "mlp_bias", "mlp_bias: true is not supported");
  }

  // Load dtype: transformers 5.x "dtype", 4.x "torch_dtype"; none means float32, as
  // from_pretrained(torch_dtype="auto") loads it.
  const char* dtype_key = f.Has("dtype") ? "dtype" : "torch_dtype";
  QUANTD_ASSIGN_OR_RETURN(std::optional<std::string> dtype, f.OptionalString(dtype_key));
  config.dtype = DType::kF32;
  if (dtype.has_value()) {
    QUANTD_ASSIGN_OR_RETURN(config.dtype, ParseDType(f, dtype_key, *dtype));
  }

  // RoPE: 4.x top-level rope_theta + rope_scaling; 5.x rope_parameters (which carries rope_theta).
  // A family with per-layer-type parameters (Gemma 3 under transformers 5) reads its own.
  QUANTD_ASSIGN_OR_RETURN(std::optional<double> theta, f.OptionalNumber("rope_theta"));
  if (theta.has_value()) config.rope_theta = *theta;
  const bool per_type_rope =
      f.Has("rope_parameters") && json.at("rope_parameters").contains("full_attention");
  if (f.Has("rope_parameters") && !per_type_rope) {
    QUANTD_RETURN_IF_ERROR(ParseRope(json.at("rope_parameters"), "rope_parameters", path, config));
  } else if (f.Has("rope_scaling") && !per_type_rope) {
    QUANTD_RETURN_IF_ERROR(ParseRope(json.at("rope_scaling"), "rope_scaling", path, config));
  }
  if (!(config.rope_theta > 0)) return f.Error("rope_theta", "expected a positive number");
  config.layer_attention.assign(static_cast<size_t>(config.num_hidden_layers),
                                LayerAttention{0, config.rope_theta, config.rope_scaling});
  QUANTD_RETURN_IF_ERROR(arch.parse(f, &config));
  config.compute_dtype =
      arch.float16_overflows && config.dtype == DType::kF16 ? DType::kF32 : config.dtype;
  return config;
}

absl::Status ParseRopeParameters(const nlohmann::json& rope, const std::string& field,
                                 std::string_view path, double* theta, RopeScaling* scaling) {
  ModelConfig scratch;
  scratch.rope_theta = *theta;
  QUANTD_RETURN_IF_ERROR(ParseRope(rope, field, path, scratch));
  *theta = scratch.rope_theta;
  *scaling = scratch.rope_scaling;
  return absl::OkStatus();
}

absl::StatusOr<ModelConfig> LoadModelConfig(std::string_view model_dir) {
  std::string path = (std::filesystem::path(std::string(model_dir)) / "config.json").string();
  absl::StatusOr<nlohmann::json> json = ReadJsonFile(path);
  if (!json.ok()) {
    if (absl::IsNotFound(json.status())) {
      return absl::InvalidArgumentError(
          absl::StrCat("model_dir ", std::string(model_dir), " has no config.json"));
    }
    return json.status();
  }
  return ParseModelConfig(*json, path);
}

}  // namespace quantd::engine
