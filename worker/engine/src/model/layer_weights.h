// The float weights of one decoder layer, as loaded from the checkpoint (exact float32 copies of
// the stored values) and as modified in place by AWQ scaling and clipping.
#ifndef QUANTD_ENGINE_MODEL_LAYER_WEIGHTS_H_
#define QUANTD_ENGINE_MODEL_LAYER_WEIGHTS_H_

#include <optional>

#include "core/tensor.h"

namespace quantd::engine {

struct LinearWeights {
  Tensor weight;              // [out_features, in_features], PyTorch nn.Linear layout.
  std::optional<Tensor> bias;  // [out_features]
  int64_t out_features() const { return weight.dim(0); }
  int64_t in_features() const { return weight.dim(1); }
};

struct LayerWeights {
  Tensor input_layernorm;           // [hidden]
  Tensor post_attention_layernorm;  // [hidden]
  LinearWeights q_proj, k_proj, v_proj, o_proj;
  LinearWeights gate_proj, up_proj, down_proj;
  std::optional<Tensor> q_norm, k_norm;  // Qwen3: [head_dim]
};

// The seven quantized Linears of a layer, in state-dict order, with their names relative to the
// layer ("self_attn.q_proj", ...).
inline constexpr const char* kLayerLinearNames[] = {
    "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
    "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj"};

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_MODEL_LAYER_WEIGHTS_H_
