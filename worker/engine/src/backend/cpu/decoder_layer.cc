#include "backend/cpu/decoder_layer.h"

#include "model/moe_layout.h"

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
  if (!cap.moe.has_value() || !IsMoeTensorName(linear)) return nullptr;
  const bool down = IsExpertDownProjection(linear);
  if (std::optional<int> e = ExpertOfLinear(linear)) {
    const auto i = static_cast<size_t>(*e);
    if (i >= cap.moe->down_input.size()) return nullptr;
    return down ? &cap.moe->down_input[i] : &cap.moe->routed_input[i];
  }
  // The shared expert's down_proj; its gate/up, the router and shared_expert_gate see every token.
  return down ? &cap.moe->shared_down_input : &cap.mlp_input;
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
  Tensor mlp_out;
  std::optional<MoeCapture> moe_cap;
  if (layer.moe.has_value()) {
    Routing routing = RouteBlock(cfg.moe, *layer.moe, mlp_in, ctx.md);
    if (capture != nullptr) moe_cap.emplace();
    mlp_out = MoeBlockForward(ViewOf(*layer.moe), routing, mlp_in, ctx.md,
                              moe_cap.has_value() ? &*moe_cap : nullptr);
    if (moe_cap.has_value()) moe_cap->routing = std::move(routing);
  } else {
    mlp_out = Mlp(ctx, layer.gate_proj, layer.up_proj, layer.down_proj, mlp_in,
                  capture ? &down_in : nullptr);
  }
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
    capture->moe = std::move(moe_cap);
    capture->mlp_output = std::move(mlp_out);
  }
}

}  // namespace quantd::engine
