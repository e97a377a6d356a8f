// The operations of a Llama-family decoder layer on the host, float32 with results rounded to the
// model dtype md at the tensor boundaries where PyTorch stores an md tensor (Linear outputs, norm
// outputs, RoPE, attention output, activations, residual sums). Internal reductions (GEMM
// accumulation, softmax, RMS) run in float32.
#ifndef QUANTD_ENGINE_BACKEND_CPU_LAYER_OPS_H_
#define QUANTD_ENGINE_BACKEND_CPU_LAYER_OPS_H_

#include <cstdint>
#include <vector>

#include "core/dtype.h"
#include "core/tensor.h"
#include "model/layer_weights.h"
#include "model/model_config.h"

namespace quantd::engine {

// Rounds every element to md.
void RoundAll(DType md, Tensor* t);

// RMSNorm over the last dim of x [N, C]: Llama's w · md(x · rsqrt(mean(x²) + eps)), or Gemma's
// md(x · rsqrt(mean(x²) + eps) · (1 + w)) in float32 (NormKind).
Tensor RmsNorm(const Tensor& x, const Tensor& weight, float eps, DType md,
               NormKind kind = NormKind::kRms);

// In place over each `head_dim` slice of x [N, heads · head_dim] (q_norm / k_norm).
void HeadRmsNorm(const Tensor& weight, float eps, DType md, NormKind kind, Tensor* x);

// y = x · Wᵀ + b, rounded to md.
Tensor Linear(const Tensor& x, const LinearWeights& linear, DType md);

// cos/sin [len, head_dim] for positions 0..len−1: inverse frequencies of the config's RoPE type
// (default, linear, llama3), angles in float32, then rounded to md.
struct RopeTable {
  int64_t len = 0;
  int64_t head_dim = 0;
  std::vector<float> cos, sin;
};
RopeTable MakeRopeTable(const ModelConfig& config, const LayerAttention& attention, int64_t len,
                        DType md);
// The table of the config's full-attention layers (rope_theta, rope_scaling).
RopeTable MakeRopeTable(const ModelConfig& config, int64_t len, DType md);

// Applies rotate-half RoPE in place to x [blocks · len, heads · head_dim].
void ApplyRope(const RopeTable& rope, int64_t heads, DType md, Tensor* x);

// What a layer's attention scores do besides the causal mask.
struct AttentionScores {
  float scale = 0.0f;    // scores = scale · q·k (1/√head_dim, or 1/√query_pre_attn_scalar)
  float softcap = 0.0f;  // scores = softcap · tanh(scores / softcap); 0: none
  int64_t window = 0;    // a query attends to the last `window` keys (itself included); 0: all
};
// The scores of `config`'s layer `layer`.
AttentionScores AttentionScoresOf(const ModelConfig& config, int layer);

// Causal attention inside each block of `len` tokens, GQA (query head h uses KV head
// h / (heads / kv_heads)). Returns [blocks · len, heads · head_dim].
Tensor CausalAttention(const Tensor& q, const Tensor& k, const Tensor& v, int64_t len,
                       int64_t heads, int64_t kv_heads, int64_t head_dim, DType md,
                       const AttentionScores& scores);

// The gated activation: md(md(act(gate)) · up), act = silu or tanh-approximated GELU.
Tensor GatedActivation(const Tensor& gate, const Tensor& up, Activation act, DType md);

// x ← md(c · tanh(md(x / c))) rounded as transformers' logits / c, tanh, · c in md (c > 0).
void SoftCap(float c, DType md, Tensor* x);

// a ← md(a + b).
void AddInPlace(const Tensor& b, DType md, Tensor* a);

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_BACKEND_CPU_LAYER_OPS_H_
