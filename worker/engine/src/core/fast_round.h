// Rounding of float32 values to float16 / bfloat16 precision without leaving float32: the hot
// path of every AutoAWQ-faithful elementwise step. Same results as RoundTo() in core/dtype.h
// (round to nearest, ties to even; overflow, subnormals and NaN take RoundTo's exact path).
#ifndef QUANTD_ENGINE_CORE_FAST_ROUND_H_
#define QUANTD_ENGINE_CORE_FAST_ROUND_H_

#include <cstdint>

#include "core/dtype.h"

namespace quantd::engine {

inline float FastRoundTo(DType t, float v) {
  const uint32_t bits = FloatToBits(v);
  const uint32_t mag = bits & 0x7fffffffu;
  const uint32_t sign = bits & 0x80000000u;
  switch (t) {
    case DType::kF16:
      // Normal float16 range [2^-14, 65504]: drop 13 mantissa bits with ties-to-even; a carry
      // into the exponent is the correct rounding up.
      if (mag >= 0x38800000u && mag <= 0x477fe000u) {
        const uint32_t r = (mag + 0xfffu + ((mag >> 13) & 1u)) & ~0x1fffu;
        return BitsToFloat(r | sign);
      }
      if (mag == 0) return v;
      return RoundTo(t, v);
    case DType::kBF16:
      if (mag < 0x7f7f0000u) {
        const uint32_t r = (mag + 0x7fffu + ((mag >> 16) & 1u)) & ~0xffffu;
        return BitsToFloat(r | sign);
      }
      return RoundTo(t, v);
    default:
      return v;
  }
}

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_CORE_FAST_ROUND_H_
