// Helpers the families' config parsers share (model/families/*.cc).
#ifndef QUANTD_ENGINE_MODEL_FAMILIES_FAMILY_PARSING_H_
#define QUANTD_ENGINE_MODEL_FAMILIES_FAMILY_PARSING_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "io/json_file.h"
#include "model/model_config.h"

namespace quantd::engine {

// The activation field, when present, must be `expected`: hidden_act, or for Gemma
// hidden_activation (which its MLP reads; configs saved by newer transformers may also carry a
// default hidden_act "silu" that Gemma ignores).
absl::Status ExpectActivation(const JsonFields& f, std::string_view expected,
                              const char* key = "hidden_act");

// attention_bias: true (biased q/k/v/o, which none of the families implements) is refused.
absl::Status RefuseAttentionBias(const JsonFields& f, const ModelConfig& config);

// "layer_types" (transformers 5), when present: one "full_attention" or "sliding_attention" per
// layer; sliding layers get `window`, which must then be positive. Returns whether it was present.
absl::StatusOr<bool> ApplyLayerTypes(const JsonFields& f, int window, ModelConfig* config);

// The config's "sliding_window" (0 when missing or null).
absl::StatusOr<int> SlidingWindow(const JsonFields& f);

// Qwen2 / Qwen3: use_sliding_window gives layers from max_window_layers on a sliding window
// (layer_types, when present, says the same per layer and wins).
absl::Status ApplyQwenSlidingWindow(const JsonFields& f, ModelConfig* config);

// A RoPE parameter object ("rope_scaling", "rope_parameters" or one of its per-layer-type
// entries): its rope_theta (when present) replaces *theta, its type and factors go to *scaling.
absl::Status ParseRopeParameters(const nlohmann::json& rope, const std::string& field,
                                 std::string_view path, double* theta, RopeScaling* scaling);

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_MODEL_FAMILIES_FAMILY_PARSING_H_
