#include "backend/cpu/decoder_layer.h"

namespace quantd::engine {

LayerContext MakeLayerContext(const ModelConfig& config, int layer, DType md, int64_t len) {
  return LayerContext{&config, md, len, MakeRopeTable(config, config.attention(layer), len, md),
                      layer};
}

Tensor SelfAttention(const LayerContext& ctx, const LinearWeights& q, const LinearWeights& k,
                     const LinearWeights& v, const LinearWeights& o, const LayerWeights& layer,
                     const Tensor& x, Tensor* o_input) {
  const ModelConfig& cfg = *ctx.config;
  const float eps = static_cast<float>(cfg.rms_norm_eps);
  Tensor qs = Linear(x, q, ctx.md);
  Tensor ks = Linear(x, k, ctx.md);
  Tensor vs = Linear(x, v, ctx.md);
  if (layer.q_norm.has_value()) HeadRmsNorm(*layer.q_norm, eps, ctx.md, cfg.norm, &qs);
  if (layer.k_norm.has_value()) HeadRmsNorm(*layer.k_norm, eps, ctx.md, cfg.norm, &ks);
  ApplyRope(ctx.rope, cfg.num_attention_heads, ctx.md, &qs);
  ApplyRope(ctx.rope, cfg.num_key_value_heads, ctx.md, &ks);
  Tensor attn =
      CausalAttention(qs, ks, vs, ctx.block_len, cfg.num_attention_heads, cfg.num_key_value_heads,
                      cfg.head_dim, ctx.md, AttentionScoresOf(cfg, ctx.layer));
  Tensor out = Linear(attn, o, ctx.md);
  if (o_input != nullptr) *o_input = std::move(attn);
  return out;
}

Tensor Mlp(const LayerContext& ctx, const LinearWeights& gate, const LinearWeights& up,
           const LinearWeights& down, const Tensor& x, Tensor* down_input) {
  Tensor act = GatedActivation(Linear(x, gate, ctx.md), Linear(x, up, ctx.md),
                               ctx.config->activation, ctx.md);
  Tensor out = Linear(act, down, ctx.md);
  if (down_input != nullptr) *down_input = std::move(act);
  return out;
}

const Tensor* CapturedInput(const LayerCapture& cap, std::string_view linear) {
  if (linear == kQProj || linear == kKProj || linear == kVProj) return &cap.attn_input;
  if (linear == kOProj) return &cap.o_input;
  if (linear == kGateProj || linear == kUpProj) return &cap.mlp_input;
  if (linear == kDownProj) return &cap.down_input;
  return nullptr;
}

void ForwardDecoderLayer(const LayerContext& ctx, const LayerWeights& layer, Tensor* hidden,
                         LayerCapture* capture) {
  const ModelConfig& cfg = *ctx.config;
  const float eps = static_cast<float>(cfg.rms_norm_eps);
  Tensor attn_in = RmsNorm(*hidden, layer.input_layernorm, eps, ctx.md, cfg.norm);
  Tensor o_in;
  Tensor attn_out = SelfAttention(ctx, layer.q_proj, layer.k_proj, layer.v_proj, layer.o_proj,
                                  layer, attn_in, capture ? &o_in : nullptr);
  // Gemma's four norms: the attention output and the MLP output are normalised before their
  // residual sums, and pre_feedforward_layernorm feeds the MLP.
  if (cfg.sandwich_norms) {
    AddInPlace(RmsNorm(attn_out, layer.post_attention_layernorm, eps, ctx.md, cfg.norm), ctx.md,
               hidden);
  } else {
    AddInPlace(attn_out, ctx.md, hidden);
  }
  const Tensor& mlp_norm =
      cfg.sandwich_norms ? *layer.pre_feedforward_layernorm : layer.post_attention_layernorm;
  Tensor mlp_in = RmsNorm(*hidden, mlp_norm, eps, ctx.md, cfg.norm);
  Tensor down_in;
  Tensor mlp_out = Mlp(ctx, layer.gate_proj, layer.up_proj, layer.down_proj, mlp_in,
                       capture ? &down_in : nullptr);
  if (cfg.sandwich_norms) {
    AddInPlace(RmsNorm(mlp_out, *layer.post_feedforward_layernorm, eps, ctx.md, cfg.norm), ctx.md,
               hidden);
  } else {
    AddInPlace(mlp_out, ctx.md, hidden);
  }
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
