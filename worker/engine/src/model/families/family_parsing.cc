#include "model/families/family_parsing.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "io/status_macros.h"

namespace quantd::engine {

absl::Status ExpectActivation(const JsonFields& f, std::string_view expected, const char* key) {
  QUANTD_ASSIGN_OR_RETURN(std::optional<std::string> act, f.OptionalString(key));
  if (act.has_value() && *act != expected) {
    return f.Unsupported(key, absl::StrCat("activation \"", *act, "\" is not supported (expected ",
                                           std::string(expected), ")"));
  }
  return absl::OkStatus();
}

absl::Status RefuseAttentionBias(const JsonFields& f, const ModelConfig& config) {
  QUANTD_ASSIGN_OR_RETURN(std::optional<bool> bias, f.OptionalBool("attention_bias"));
  if (bias.value_or(false)) {
    return f.Unsupported("attention_bias",
                         absl::StrCat("attention_bias: true (biased q/k/v/o projections) is not "
                                      "supported for ",
                                      config.architecture_name));
  }
  return absl::OkStatus();
}

absl::StatusOr<int> SlidingWindow(const JsonFields& f) {
  QUANTD_ASSIGN_OR_RETURN(std::optional<int64_t> w, f.OptionalInt("sliding_window"));
  if (!w.has_value()) return 0;
  if (*w <= 0 || *w > (int64_t{1} << 30)) {
    return f.Error("sliding_window", absl::StrCat("expected a positive integer, found ", *w));
  }
  return static_cast<int>(*w);
}

absl::StatusOr<bool> ApplyLayerTypes(const JsonFields& f, int window, ModelConfig* config) {
  const nlohmann::json* types = f.Find("layer_types");
  if (types == nullptr) return false;
  if (!types->is_array() || types->size() != config->layer_attention.size()) {
    return f.Error("layer_types", absl::StrCat("expected a list of ", config->num_hidden_layers,
                                               " layer types, found ", types->dump()));
  }
  for (size_t i = 0; i < types->size(); ++i) {
    const nlohmann::json& t = (*types)[i];
    if (t == "full_attention") {
      config->layer_attention[i].sliding_window = 0;
    } else if (t == "sliding_attention") {
      if (window <= 0) {
        return f.Error("sliding_window",
                       "layer_types has sliding_attention layers, so a positive "
                       "sliding_window is needed");
      }
      config->layer_attention[i].sliding_window = window;
    } else {
      return f.Unsupported("layer_types",
                           absl::StrCat("layer type ", t.dump(),
                                        " is not supported (full_attention, sliding_attention)"));
    }
  }
  return true;
}

absl::Status ApplyQwenSlidingWindow(const JsonFields& f, ModelConfig* config) {
  QUANTD_ASSIGN_OR_RETURN(int window, SlidingWindow(f));
  QUANTD_ASSIGN_OR_RETURN(bool typed, ApplyLayerTypes(f, window, config));
  if (typed) return absl::OkStatus();
  QUANTD_ASSIGN_OR_RETURN(std::optional<bool> use, f.OptionalBool("use_sliding_window"));
  if (!use.value_or(false)) return absl::OkStatus();
  if (window <= 0) {
    return f.Error("sliding_window",
                   "use_sliding_window is true, so a positive sliding_window "
                   "is needed");
  }
  QUANTD_ASSIGN_OR_RETURN(std::optional<int64_t> first, f.OptionalInt("max_window_layers"));
  for (int i = static_cast<int>(first.value_or(0)); i < config->num_hidden_layers; ++i) {
    config->layer_attention[static_cast<size_t>(i)].sliding_window = window;
  }
  return absl::OkStatus();
}

}  // namespace quantd::engine
