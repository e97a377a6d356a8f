// AutoAWQ's asymmetric (zero-point) group quantizer, pseudo_quantize_tensor (spec/awq.md §6).
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

// Integer codes and per-group parameters of a quantized [rows, cols] matrix, cols % group == 0.
struct GroupQuantization {
  uint8_t* codes = nullptr;  // [rows, cols], 0..15; optional (nullptr = not wanted)
  float* scales = nullptr;   // [rows, cols / group], values in md; optional
  uint8_t* zeros = nullptr;  // [rows, cols / group], 0..15; optional
};

// Quantizes one group of `n` values in place: w ← (q − zero) · scale. Returns the scale and zero.
void PseudoQuantizeGroup(float* w, int64_t n, DType md, uint8_t* codes, float* scale,
                         uint8_t* zero);

// Quantizes every group of `w` [rows, cols] in place (w ← dequantized values) and optionally
// returns the codes, scales and zeros.
void PseudoQuantize(float* w, int64_t rows, int64_t cols, int64_t group, DType md,
                    const GroupQuantization& out = {});

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_AWQ_PSEUDO_QUANTIZE_H_
