// Gemma 2 (Gemma2ForCausalLM; AutoAWQ awq/models/gemma2.py). Against Llama's layer: RMSNorms scale
// by 1 + w (in float32), embeddings are multiplied by √hidden_size (rounded to the model dtype),
// the MLP is GeGLU with tanh-approximated GELU, four norms per layer (post_attention_layernorm
// normalises the attention output, pre_/post_feedforward_layernorm wrap the MLP), attention
// scores are scaled by 1/√query_pre_attn_scalar and soft-capped (c · tanh(s / c)), the final
// logits are soft-capped, and even layers attend within sliding_window (odd ones globally).
//
// Scaling groups are AutoAWQ's (llama_layout.h with pre_feedforward_layernorm before the MLP); the
// inspected modules end before the post norms, as self_attn and mlp do in transformers. A norm
// scaled by a group folds s into 1 + w (w ← (1 + w) / s − 1), as AutoAWQ's scale_ln_fcs does for
// Gemma2RMSNorm.
#include <optional>

#include "io/status_macros.h"
#include "model/families/family_parsing.h"
#include "model/families/gemma_features.h"
#include "model/families/llama_layout.h"
#include "model/layer_weights.h"

namespace quantd::engine {
namespace {

absl::Status ParseGemma2(const JsonFields& f, ModelConfig* config) {
  QUANTD_RETURN_IF_ERROR(ParseGemmaFeatures(f, config));
  QUANTD_ASSIGN_OR_RETURN(int window, SlidingWindow(f));
  QUANTD_ASSIGN_OR_RETURN(bool typed, ApplyLayerTypes(f, window, config));
  if (!typed) {
    // transformers' Gemma2DecoderLayer: is_sliding = not bool(layer_idx % 2).
    for (size_t i = 0; i < config->layer_attention.size(); i += 2) {
      config->layer_attention[i].sliding_window = window;
    }
  }
  return absl::OkStatus();
}

}  // namespace

const ArchitectureSpec& Gemma2Architecture() {
  static const ArchitectureSpec spec{
      .name = "gemma2",
      .hf_class = "Gemma2ForCausalLM",
      .model_types = {"gemma2"},
      .autoawq_class = "Gemma2AWQForCausalLM",
      .tied_embeddings_by_default = true,
      .float16_overflows = true,
      .native_remote_code = "",
      .parse = ParseGemma2,
      .layer_tensors = LlamaLayerTensors,
      .scaling_groups = PreFeedforwardNormGroups,
  };
  return spec;
}

}  // namespace quantd::engine
