// Gemma 3 text models (Gemma3ForCausalLM, model_type gemma3_text: Gemma 3 1B, and the language
// model of the larger multimodal checkpoints). Gemma 2's layer (gemma2.cc) plus RMSNorms (1 + w)
// over each head of q and k before RoPE; no soft-capping in the released configs (read when
// present); five sliding layers per global one (sliding_window_pattern, or layer_types); sliding
// layers use rope_local_base_freq without scaling, global layers rope_theta with rope_scaling.
//
// AutoAWQ 0.2.9 has no Gemma 3 class. The groups are Gemma 2's — the layer is the same up to the
// q/k norms, which sit inside self_attn like Qwen3's and are never scaled — and norms fold s into
// 1 + w as for Gemma 2 (AutoAWQ's scale_ln_fcs tests only GemmaRMSNorm / Gemma2RMSNorm: applied to
// a Gemma3RMSNorm it would divide w alone, which changes the model).
#include <optional>

#include "absl/strings/str_cat.h"
#include "io/status_macros.h"
#include "model/families/family_parsing.h"
#include "model/families/gemma_features.h"
#include "model/families/llama_layout.h"
#include "model/layer_weights.h"

namespace quantd::engine {
namespace {

absl::Status ParseGemma3Text(const JsonFields& f, ModelConfig* config) {
  QUANTD_RETURN_IF_ERROR(ParseGemmaFeatures(f, config));
  config->qk_norm = true;
  QUANTD_ASSIGN_OR_RETURN(int window, SlidingWindow(f));
  QUANTD_ASSIGN_OR_RETURN(bool typed, ApplyLayerTypes(f, window, config));
  if (!typed) {
    QUANTD_ASSIGN_OR_RETURN(std::optional<int64_t> pattern,
                            f.OptionalInt("sliding_window_pattern"));
    const int64_t p = pattern.value_or(6);
    if (p <= 0) return f.Error("sliding_window_pattern", "expected a positive integer");
    // transformers' Gemma3DecoderLayer: is_sliding = bool((layer_idx + 1) % pattern).
    for (size_t i = 0; i < config->layer_attention.size(); ++i) {
      if ((static_cast<int64_t>(i) + 1) % p != 0)
        config->layer_attention[i].sliding_window = window;
    }
  }
  // RoPE of the sliding layers: transformers 4.x rope_local_base_freq with default RoPE; 5.x
  // rope_parameters.sliding_attention. Global layers: the common fields (model_config.cc), or
  // rope_parameters.full_attention.
  double local_theta = 10000.0;
  RopeScaling local_scaling;
  if (const nlohmann::json* rope = f.Find("rope_parameters");
      rope != nullptr && rope->is_object() && rope->contains("full_attention")) {
    const std::string& path = f.origin();
    QUANTD_RETURN_IF_ERROR(ParseRopeParameters(rope->at("full_attention"),
                                               "rope_parameters.full_attention", path,
                                               &config->rope_theta, &config->rope_scaling));
    if (rope->contains("sliding_attention")) {
      QUANTD_RETURN_IF_ERROR(ParseRopeParameters(rope->at("sliding_attention"),
                                                 "rope_parameters.sliding_attention", path,
                                                 &local_theta, &local_scaling));
    }
  } else {
    QUANTD_ASSIGN_OR_RETURN(std::optional<double> local, f.OptionalNumber("rope_local_base_freq"));
    if (local.has_value()) {
      if (!(*local > 0)) return f.Error("rope_local_base_freq", "expected a positive number");
      local_theta = *local;
    }
  }
  for (LayerAttention& a : config->layer_attention) {
    a.rope_theta = a.sliding_window > 0 ? local_theta : config->rope_theta;
    a.rope_scaling = a.sliding_window > 0 ? local_scaling : config->rope_scaling;
  }
  return absl::OkStatus();
}

}  // namespace

const ArchitectureSpec& Gemma3TextArchitecture() {
  static const ArchitectureSpec spec{
      .name = "gemma3_text",
      .hf_class = "Gemma3ForCausalLM",
      .model_types = {"gemma3_text"},
      .autoawq_class = "",
      .tied_embeddings_by_default = true,
      .float16_overflows = true,
      .native_remote_code = "",
      .parse = ParseGemma3Text,
      .layer_tensors = LlamaLayerTensors,
      .scaling_groups = PreFeedforwardNormGroups,
  };
  return spec;
}

}  // namespace quantd::engine
