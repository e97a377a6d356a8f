#include "backend/cpu/decoder_layer.h"

namespace quantd::engine {

Tensor SelfAttention(const LayerContext& ctx, const LinearWeights& q, const LinearWeights& k,
                     const LinearWeights& v, const LinearWeights& o, const LayerWeights& layer,
                     const Tensor& x, Tensor* o_input) {
  const ModelConfig& cfg = *ctx.config;
  const float eps = static_cast<float>(cfg.rms_norm_eps);
  Tensor qs = Linear(x, q, ctx.md);
  Tensor ks = Linear(x, k, ctx.md);
  Tensor vs = Linear(x, v, ctx.md);
  if (layer.q_norm.has_value()) HeadRmsNorm(*layer.q_norm, eps, ctx.md, &qs);
  if (layer.k_norm.has_value()) HeadRmsNorm(*layer.k_norm, eps, ctx.md, &ks);
  ApplyRope(ctx.rope, cfg.num_attention_heads, ctx.md, &qs);
  ApplyRope(ctx.rope, cfg.num_key_value_heads, ctx.md, &ks);
  Tensor attn = CausalAttention(qs, ks, vs, ctx.block_len, cfg.num_attention_heads,
                                cfg.num_key_value_heads, cfg.head_dim, ctx.md);
  Tensor out = Linear(attn, o, ctx.md);
  if (o_input != nullptr) *o_input = std::move(attn);
  return out;
}

Tensor Mlp(const LayerContext& ctx, const LinearWeights& gate, const LinearWeights& up,
           const LinearWeights& down, const Tensor& x, Tensor* down_input) {
  Tensor act = SiluMul(Linear(x, gate, ctx.md), Linear(x, up, ctx.md), ctx.md);
  Tensor out = Linear(act, down, ctx.md);
  if (down_input != nullptr) *down_input = std::move(act);
  return out;
}

void ForwardDecoderLayer(const LayerContext& ctx, const LayerWeights& layer, Tensor* hidden,
                         LayerCapture* capture) {
  const float eps = static_cast<float>(ctx.config->rms_norm_eps);
  Tensor attn_in = RmsNorm(*hidden, layer.input_layernorm, eps, ctx.md);
  Tensor o_in;
  Tensor attn_out = SelfAttention(ctx, layer.q_proj, layer.k_proj, layer.v_proj, layer.o_proj,
                                  layer, attn_in, capture ? &o_in : nullptr);
  AddInPlace(attn_out, ctx.md, hidden);
  Tensor mlp_in = RmsNorm(*hidden, layer.post_attention_layernorm, eps, ctx.md);
  Tensor down_in;
  Tensor mlp_out = Mlp(ctx, layer.gate_proj, layer.up_proj, layer.down_proj, mlp_in,
                       capture ? &down_in : nullptr);
  AddInPlace(mlp_out, ctx.md, hidden);
  if (capture != nullptr) {
    capture->attn_input = std::move(attn_in);
    capture->o_input = std::move(o_in);
    capture->attn_output = std::move(attn_out);
    capture->mlp_input = std::move(mlp_in);
    capture->down_input = std::move(down_in);
    capture->mlp_output = std::move(mlp_out);
  }
}

}  // namespace quantd::engine
