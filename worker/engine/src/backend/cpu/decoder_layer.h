// A Llama / Qwen2 / Qwen3 / Mistral decoder layer on the host, split into the two modules AWQ
// inspects (self_attn, mlp) so the scale search can rerun them with trial weights.
#ifndef QUANTD_ENGINE_BACKEND_CPU_DECODER_LAYER_H_
#define QUANTD_ENGINE_BACKEND_CPU_DECODER_LAYER_H_

#include "backend/cpu/layer_ops.h"
#include "core/tensor.h"
#include "model/layer_weights.h"
#include "model/model_config.h"

namespace quantd::engine {

// The fixed context of a layer forward: geometry, dtype, RoPE table of the block length.
struct LayerContext {
  const ModelConfig* config = nullptr;
  DType md = DType::kF16;
  int64_t block_len = 0;
  RopeTable rope;
};

// self_attn(x): q/k/v projections (+bias), q/k norm (Qwen3), RoPE, causal GQA attention per
// block, o_proj. `o_input` (optional) receives the attention output that enters o_proj.
Tensor SelfAttention(const LayerContext& ctx, const LinearWeights& q, const LinearWeights& k,
                     const LinearWeights& v, const LinearWeights& o, const LayerWeights& layer,
                     const Tensor& x, Tensor* o_input);

// mlp(x) = down(silu(gate(x)) · up(x)); `down_input` (optional) receives the down_proj input.
Tensor Mlp(const LayerContext& ctx, const LinearWeights& gate, const LinearWeights& up,
           const LinearWeights& down, const Tensor& x, Tensor* down_input);

// The inputs of every Linear and the outputs of the two inspected modules of one forward.
struct LayerCapture {
  Tensor attn_input;  // input of q/k/v (after input_layernorm)
  Tensor o_input;
  Tensor attn_output;  // self_attn output (reference of the attention group)
  Tensor mlp_input;    // input of gate/up (after post_attention_layernorm)
  Tensor down_input;
  Tensor mlp_output;  // mlp output (reference of the MLP group)
};

// hidden ← layer(hidden). With `capture`, keeps the intermediate tensors AWQ needs.
void ForwardDecoderLayer(const LayerContext& ctx, const LayerWeights& layer, Tensor* hidden,
                         LayerCapture* capture);

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_BACKEND_CPU_DECODER_LAYER_H_
