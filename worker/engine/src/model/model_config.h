// ModelConfig: what the engine needs from a model's config.json, parsed from both styles real
// checkpoints use (transformers 4.x: rope_theta, rope_scaling, torch_dtype; 5.x: rope_parameters,
// dtype). The common geometry is parsed here; what a family adds (Gemma's soft-capping, its
// alternating attention, ...) is parsed by the family's record (model/architecture.h, files under
// model/families/). The raw JSON is kept so the exported config.json preserves every field.
#ifndef QUANTD_ENGINE_MODEL_MODEL_CONFIG_H_
#define QUANTD_ENGINE_MODEL_MODEL_CONFIG_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/dtype.h"
#include "model/moe_config.h"
#include "nlohmann/json.hpp"

namespace quantd::engine {

struct ArchitectureSpec;

struct RopeScaling {
  enum class Type { kDefault, kLinear, kLlama3 };
  Type type = Type::kDefault;
  double factor = 1.0;
  // llama3 only.
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int original_max_position_embeddings = 8192;
};

// How a family's RMSNorm applies its weight.
enum class NormKind {
  kRms,               // Llama: w · md(x · rsqrt(mean(x²) + eps))
  kRmsOnePlusWeight,  // Gemma: md(x · rsqrt(mean(x²) + eps) · (1 + w)), all in float32
};

// The MLP's gating activation.
enum class Activation {
  kSilu,      // silu(gate) · up
  kGeluTanh,  // gelu(gate, approximate="tanh") · up (GeGLU)
};

// The attention of one layer: its window and its RoPE.
struct LayerAttention {
  int sliding_window = 0;  // a query attends to the last `sliding_window` keys (itself included);
                           // 0: every earlier key
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
};

struct ModelConfig {
  const ArchitectureSpec* arch = nullptr;  // the family's record (model/registry.h)
  std::string architecture_name;           // e.g. "Qwen2ForCausalLM"
  int hidden_size = 0;
  int intermediate_size = 0;
  int num_hidden_layers = 0;
  int num_attention_heads = 0;
  int num_key_value_heads = 0;
  int head_dim = 0;  // config's head_dim, else hidden_size / num_attention_heads
  int vocab_size = 0;
  int max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;  // of full-attention layers (LayerAttention has each layer's)
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // q/k/v have bias (Qwen2, or Llama with attention_bias: true)
  bool qk_norm = false;         // Qwen3, Gemma 3: RMSNorm over each head of q and k before RoPE
  DType dtype = DType::kF16;    // torch_dtype / dtype: the checkpoint's dtype
  // The "MD" the engine computes in: dtype (AutoAWQ's torch_dtype="auto"), except float32 for a
  // float16 checkpoint of a family whose activations overflow float16 (Gemma).
  DType compute_dtype = DType::kF16;
  nlohmann::json raw;  // The whole config.json as read.

  // Forward-pass features (set by the family's parser; the defaults are Llama's).
  NormKind norm = NormKind::kRms;
  Activation activation = Activation::kSilu;
  bool sandwich_norms = false;       // Gemma 2/3: post_attention_layernorm normalises the attention
                                     // output; pre_/post_feedforward_layernorm wrap the MLP
  bool scale_embeddings = false;     // Gemma: embeddings × md(√hidden_size)
  double query_pre_attn_scalar = 0;  // attention scores × 1/√this; 0: 1/√head_dim
  double attn_logit_softcapping = 0;            // Gemma 2: scores = c · tanh(scores / c); 0: none
  double final_logit_softcapping = 0;           // Gemma 2: logits = c · tanh(logits / c); 0: none
  std::vector<LayerAttention> layer_attention;  // [num_hidden_layers]
  MoeConfig moe;  // MoE families (set by their parser); moe.enabled() false for dense models

  // Layer `layer`'s attention; a config built by hand without layer_attention gets full
  // attention with the global RoPE.
  LayerAttention attention(int layer) const {
    if (layer < 0 || static_cast<size_t>(layer) >= layer_attention.size()) {
      return {0, rope_theta, rope_scaling};
    }
    return layer_attention[static_cast<size_t>(layer)];
  }
  // The largest sliding window of any layer (0: none has one).
  int max_sliding_window() const;
};

// Parses a config.json document. `path` is only used in error messages. A config without
// "architectures" is accepted through "model_type"; anything else unknown is refused with the
// list of what is supported.
absl::StatusOr<ModelConfig> ParseModelConfig(const nlohmann::json& json, std::string_view path);

// Reads and parses `model_dir`/config.json.
absl::StatusOr<ModelConfig> LoadModelConfig(std::string_view model_dir);

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_MODEL_MODEL_CONFIG_H_
