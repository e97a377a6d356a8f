// Host entry points of the CUDA backend's kernels. Activations and weights are float32 device
// arrays whose values are representable in the model dtype md (every step rounds to md where the
// CPU reference does); GEMM operands are copies in md itself. All launches are asynchronous on
// `stream`; errors surface through cudaGetLastError / the next synchronisation.
#ifndef QUANTD_ENGINE_CUDA_KERNELS_H_
#define QUANTD_ENGINE_CUDA_KERNELS_H_

#include <cuda_runtime.h>

#include <cstdint>

#include "core/dtype.h"

namespace quantd::engine::cuda {

// y[r, :] = w · md(x · rsqrt(mean(x²) + eps)) per row of `cols`, or with `one_plus_weight`
// (Gemma) md(x · rsqrt(mean(x²) + eps) · (1 + w)); y may alias x.
void RmsNorm(const float* x, const float* w, float* y, int64_t rows, int64_t cols, float eps,
             DType md, bool one_plus_weight, cudaStream_t stream);

// y[r, c] = md(y[r, c] + bias[c]) (bias may be null: just rounds).
void BiasRound(float* y, const float* bias, int64_t rows, int64_t cols, DType md,
               cudaStream_t stream);

// The same into y_op (dtype md, 16-bit), y left as it is.
void BiasRoundOperand(const float* y, const float* bias, int64_t rows, int64_t cols, DType md,
                      void* y_op, cudaStream_t stream);

// Rotate-half RoPE on x [tokens, heads · head_dim]; cos/sin [len, head_dim] in md. In place, or
// into x_op (dtype md, 16-bit; x left as it is) where x_op is not null; x null: in place on x_op.
void Rope(float* x, const float* cos, const float* sin, int64_t tokens, int64_t heads,
          int64_t head_dim, int64_t len, DType md, void* x_op, cudaStream_t stream);

// Rope in place on both md (16-bit) operands q [tokens, heads · head_dim] and k [tokens,
// kv_heads · head_dim] in one launch of 16-byte vectors (head_dim % 16 == 0, aligned buffers;
// otherwise two Rope launches); values identical to Rope's.
void RopeQkOperand(void* q, void* k, const float* cos, const float* sin, int64_t tokens,
                   int64_t heads, int64_t kv_heads, int64_t head_dim, int64_t len, DType md,
                   cudaStream_t stream);

// out = md(md(act(gate)) · up), act = silu, or tanh-approximated GELU with `gelu_tanh` (GeGLU).
void GatedMul(const float* gate, const float* up, float* out, int64_t n, bool gelu_tanh, DType md,
              cudaStream_t stream);

// The same from gate / up stored in md (16-bit): act (md) = md(md(act(gate)) · up).
void GatedMulOperand(const void* gate, const void* up, void* act, int64_t n, bool gelu_tanh,
                     DType md, cudaStream_t stream);

// x = md(md(tanh(md(x / cap))) · cap): Gemma 2's final logit soft-capping.
void SoftCap(float* x, int64_t n, float cap, DType md, cudaStream_t stream);

// a = md(a + b).
void AddRound(float* a, const float* b, int64_t n, DType md, cudaStream_t stream);

// dst (dtype md) = src; values must already be representable in md.
void ToOperand(const float* src, void* dst, int64_t n, DType md, cudaStream_t stream);

// *acc += Σ md(clip(ref) − clip(out))² over n elements (AutoAWQ's _compute_loss numerator);
// ref and out both float32 or both md (`type`).
void AddSquaredError(const void* ref, const void* out, DType type, int64_t n, DType md, double* acc,
                     cudaStream_t stream);

// *acc += Σ (a_hi[i] + a_lo[i]) · b[i] (float64 accumulation; a_lo may be null).
void AddDot(const float* a_hi, const float* a_lo, const float* b, int64_t n, double* acc,
            cudaStream_t stream);

// x = hi + lo exactly, hi exact in TF32 (x's low 13 mantissa bits cleared, in place), lo the rest:
// the operands of Gemm::MulSymmetricSplit.
void SplitTf32(float* x, float* lo, int64_t n, cudaStream_t stream);

// sums[c] += Σ_r |x[r, c]| (float64); x is float32 or 16-bit (x_type).
void AddColumnAbsSums(const void* x, DType x_type, int64_t rows, int64_t cols, double* sums,
                      cudaStream_t stream);

// sums[c] += Σ_r md(|w[r, c]| / md(max_group|w| + 1e-6)); `denom` is scratch [rows · cols/group].
void AddNormalizedWeightSums(const float* w, int64_t rows, int64_t cols, int64_t group, DType md,
                             float* denom, double* sums, cudaStream_t stream);

// out[c] = md(float(sums[c]) · (1 / count)).
void FinishMean(const double* sums, int64_t cols, int64_t count, DType md, float* out,
                cudaStream_t stream);

// Trial weights of the scale search for `ratios` scale vectors s [ratios, cols]: for each,
// md(Q(md(w · s)) / s). Writes any of: trial [ratios, rows, cols], delta = trial − w (same
// shape), operand (dtype md, same shape).
void ScaleQuantizeUnscale(const float* w, const float* s, int ratios, int64_t rows, int64_t cols,
                          int64_t group, DType md, float* trial, float* delta, void* operand,
                          cudaStream_t stream);

// The final quantization of a Linear: w is cast to float16 and quantized group-wise in float16;
// codes [rows, cols], scales [rows, cols/group] (float16-exact), zeros [rows, cols/group].
void QuantizeF16(const float* w, int64_t rows, int64_t cols, int64_t group, uint8_t* codes,
                 float* scales, uint8_t* zeros, cudaStream_t stream);

// AutoAWQ's GEMM layout from codes [out, in], zeros / scales [out, groups]: qweight [in, out/8],
// qzeros [groups, out/8], scales_t [groups, out] as float16 bits.
void PackGemm(const uint8_t* codes, const uint8_t* zeros, const float* scales, int64_t out,
              int64_t in, int64_t group, int32_t* qweight, int32_t* qzeros, uint16_t* scales_t,
              cudaStream_t stream);

// w[:, j] = md(w[:, j] · s[j]) for w [rows, cols].
void MultiplyColumns(float* w, const float* s, int64_t rows, int64_t cols, DType md,
                     cudaStream_t stream);
// x[:, j] = md(x[:, j] / s[j]) for x [rows, cols].
void DivideColumns(float* x, const float* s, int64_t rows, int64_t cols, DType md,
                   cudaStream_t stream);
// Gemma's norms (scale 1 + w): w[j] = md(md(md(w[j] + 1) / s[j]) − 1), as AutoAWQ's in-place
// steps on Gemma2RMSNorm.
void DivideOnePlusColumns(float* w, const float* s, int64_t n, DType md, cudaStream_t stream);
// w[first + i, :] = md(w[first + i, :] / s[i]) for i < n; w has `cols` columns.
void DivideRows(float* w, const float* s, int64_t first, int64_t n, int64_t cols, DType md,
                cudaStream_t stream);

// out[t, :] = x[t · step, :] for t < kept (x float32 or 16-bit per x_type; out float32).
void GatherRows(const void* x, DType x_type, int64_t step, int64_t kept, int64_t cols, float* out,
                cudaStream_t stream);

// w[o, j] = clamp(w[o, j], −max_val[o, j/group], max_val[o, j/group]).
void ApplyClip(float* w, const float* max_val, int64_t rows, int64_t cols, int64_t group,
               cudaStream_t stream);

// The clip search (awq/clip_search.h), in AutoAWQ's md arithmetic, for the groups g0..g0+ng of
// w [rows, cols], in three steps around two batched products (one per group):
//   ClipTrials: trials [ng, 10 · rows, group] = Q(clamp(w_g, ±md(m0 · (1 − i/20)))) for the 10
//     shrink steps i (row index i · rows + o); m0 [rows, groups] = max|w_g|.
//   (caller) ref [ng, n_tok, rows] = x_g · w_gᵀ and cur [ng, n_tok, 10 · rows] = x_g · trialsᵀ.
//   ClipErrors: err [ng, 10, rows] = md(Σ_t md(md(md(cur) − md(ref))²) / n_tok).
//   ClipSelect: max_val / shrink_index [rows, groups] of the first strictly smallest error.
inline constexpr int kClipStepCount = 10;
void ClipTrials(const float* w, int64_t rows, int64_t cols, int64_t group, int64_t g0, int64_t ng,
                DType md, float* trials, float* m0, cudaStream_t stream);
void ClipErrors(const float* cur, const float* ref, int64_t ng, int64_t n_tok, int64_t rows,
                DType md, float* err, cudaStream_t stream);
void ClipSelect(const float* err, const float* m0, int64_t rows, int64_t groups, int64_t g0,
                int64_t ng, DType md, float* max_val, uint8_t* shrink_index, cudaStream_t stream);

// What a layer's attention scores do besides the causal mask (backend/cpu/layer_ops.h's
// AttentionScores): scores = scale · q·k, then softcap · tanh(scores / softcap) when softcap > 0;
// with window > 0 a query sees only the last `window` keys (itself included).
struct AttentionOptions {
  float scale = 0.0f;       // 1/√head_dim or 1/√query_pre_attn_scalar, as the CPU computes it
  float scale_log2 = 0.0f;  // the same times log₂e, formed in double (the base-2 softmax's)
  float softcap = 0.0f;
  int64_t window = 0;
};

// The head dimensions the attention kernels are compiled for.
bool AttentionSupportsHeadDim(int64_t head_dim);

// Causal attention per block of `len` tokens with GQA, fused (online softmax, no score matrix).
// q [tokens, heads · d], k / v [tokens, kv_heads · d] in md (float32 arrays for a float32 md).
// The output [tokens, heads · d], rounded to md, goes to `out` (float32) and/or `out_op` (dtype
// md, a GEMM operand); either may be null, and `out_op` must be null for a float32 md. 16-bit md
// runs on the tensor cores (Q·Kᵀ and P·V in md with float32 accumulation, P rounded to md,
// softmax in float32); float32 md runs an exact float32 kernel. Supported head_dim: 64, 96, 128,
// 256 (AttentionSupportsHeadDim). Returns false for others.
bool CausalAttention(const void* q, const void* k, const void* v, float* out, void* out_op,
                     int64_t tokens, int64_t len, int64_t heads, int64_t kv_heads, int64_t head_dim,
                     DType md, const AttentionOptions& options, cudaStream_t stream);

// *acc += Σ_rows (logsumexp(logits[r, :]) − logits[r, target[r]]) for logits [rows, vocab].
void AddNll(const float* logits, const int32_t* targets, int64_t rows, int64_t vocab, double* acc,
            cudaStream_t stream);

}  // namespace quantd::engine::cuda

#endif  // QUANTD_ENGINE_CUDA_KERNELS_H_
