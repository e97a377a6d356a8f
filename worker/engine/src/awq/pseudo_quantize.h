// AutoAWQ's group quantizer, pseudo_quantize_tensor (spec/awq.md §6): asymmetric with a zero point
// per group (zero_point true, the GEMM layout) or symmetric (zero_point false: codes −8..7 around
// zero), over groups of q_group_size columns or whole rows (per-channel).
//
// Arithmetic model: every value is a float32 holding a number representable in `md` (the dtype
// AutoAWQ computes in); each elementwise step is computed in float32 and rounded once to `md`,
// round-half-to-even, in AutoAWQ's order. With md = kF32 nothing is rounded.
#ifndef QUANTD_ENGINE_AWQ_PSEUDO_QUANTIZE_H_
#define QUANTD_ENGINE_AWQ_PSEUDO_QUANTIZE_H_

#include <cstdint>

#include "core/dtype.h"

namespace quantd::engine {

inline constexpr int kQuantBits = 4;
inline constexpr int kQuantMaxInt = (1 << kQuantBits) - 1;  // 15
// Symmetric codes q ∈ [−8, 7] are stored as q + 8 with zero point 8, so that both kinds dequantize
// as (code − zero) · scale.
inline constexpr int kSymmetricZero = 1 << (kQuantBits - 1);  // 8

// How weights are quantized: AutoAWQ's q_group_size and zero_point (w_bit is 4).
struct QuantScheme {
  int64_t group_size = 128;  // ≤ 0: per-channel, one group per row
  bool zero_point = true;    // false: symmetric
  // The group length for rows of `cols` columns.
  int64_t GroupFor(int64_t cols) const { return group_size > 0 ? group_size : cols; }
};

// Integer codes and per-group parameters of a quantized [rows, cols] matrix.
struct GroupQuantization {
  uint8_t* codes = nullptr;  // [rows, cols], 0..15; optional (nullptr = not wanted)
  float* scales = nullptr;   // [rows, cols / group], values in md; optional
  uint8_t* zeros = nullptr;  // [rows, cols / group], 0..15 (8 when symmetric); optional
};

// Quantizes one group of `n` values in place: w ← (code − zero) · scale. Returns the scale and
// zero.
void PseudoQuantizeGroup(float* w, int64_t n, DType md, bool zero_point, uint8_t* codes,
                         float* scale, uint8_t* zero);

// Quantizes every group of `w` [rows, cols] in place (w ← dequantized values) and optionally
// returns the codes, scales and zeros. cols % scheme.GroupFor(cols) == 0.
void PseudoQuantize(float* w, int64_t rows, int64_t cols, const QuantScheme& scheme, DType md,
                    const GroupQuantization& out = {});

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_AWQ_PSEUDO_QUANTIZE_H_
