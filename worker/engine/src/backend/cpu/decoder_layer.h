// A decoder layer on the host, split into the two modules AWQ inspects (self_attn, mlp) so the
// scale search can rerun them with trial weights. The families' differences come from the
// ModelConfig's features: q/k norms, Gemma's norms and their placement, the activation, the
// attention's window, scale and soft-capping.
#ifndef QUANTD_ENGINE_BACKEND_CPU_DECODER_LAYER_H_
#define QUANTD_ENGINE_BACKEND_CPU_DECODER_LAYER_H_

#include <optional>

#include "backend/cpu/layer_ops.h"
#include "backend/cpu/moe_block.h"
#include "core/tensor.h"
#include "model/layer_weights.h"
#include "model/model_config.h"

namespace quantd::engine {

// The fixed context of a layer forward: geometry, dtype, the layer's RoPE table of the block
// length, and which layer it is (its attention settings).
struct LayerContext {
  const ModelConfig* config = nullptr;
  DType md = DType::kF16;
  int64_t block_len = 0;
  RopeTable rope;
  int layer = 0;
};

// The context of `config`'s layer `layer` over blocks of `len` tokens.
LayerContext MakeLayerContext(const ModelConfig& config, int layer, DType md, int64_t len);

// self_attn(x): q/k/v projections (+bias), q/k norms, RoPE, causal GQA attention per block, o_proj.
// `o_input` (optional) receives the attention output that enters o_proj.
Tensor SelfAttention(const LayerContext& ctx, const LinearWeights& q, const LinearWeights& k,
                     const LinearWeights& v, const LinearWeights& o, const LayerWeights& layer,
                     const Tensor& x, Tensor* o_input);

// mlp(x) = down(act(gate(x)) · up(x)); `down_input` (optional) receives the down_proj input.
Tensor Mlp(const LayerContext& ctx, const LinearWeights& gate, const LinearWeights& up,
           const LinearWeights& down, const Tensor& x, Tensor* down_input);

// The inputs of every Linear and the outputs of the two inspected modules of one forward.
struct LayerCapture {
  Tensor attn_input;  // input of q/k/v (after input_layernorm)
  Tensor o_input;
  Tensor attn_output;  // self_attn output (reference of the attention group)
  Tensor mlp_input;    // input of gate/up (after the norm before the MLP)
  Tensor down_input;
  Tensor mlp_output;  // mlp output (reference of the MLP group; a sparse layer's block output)
  std::optional<MoeCapture> moe;  // sparse layers: routing, the experts' inputs
};

// The captured input of a Linear (by its name relative to the layer); nullptr for other names.
const Tensor* CapturedInput(const LayerCapture& capture, std::string_view linear);

// hidden ← layer(hidden): attention, then the MLP or (layer.moe) the sparse MoE block. With
// `capture`, keeps the intermediate tensors AWQ needs.
void ForwardDecoderLayer(const LayerContext& ctx, const LayerWeights& layer, Tensor* hidden,
                         LayerCapture* capture);

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_BACKEND_CPU_DECODER_LAYER_H_
