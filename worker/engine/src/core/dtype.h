// Storage dtypes of checkpoint tensors and exact conversions between them and float32.
// Conversions to 16-bit types round to nearest, ties to even, as PyTorch's casts do; overflow
// gives ±inf and NaN stays NaN.
#ifndef QUANTD_ENGINE_CORE_DTYPE_H_
#define QUANTD_ENGINE_CORE_DTYPE_H_

#include <cstdint>
#include <cstring>
#include <string_view>

namespace quantd::engine {

enum class DType { kF32, kF16, kBF16, kI32, kI64 };

// Size in bytes of one element.
constexpr int DTypeSize(DType t) {
  return t == DType::kF16 || t == DType::kBF16 ? 2 : (t == DType::kI64 ? 8 : 4);
}
constexpr bool IsIntegerDType(DType t) { return t == DType::kI32 || t == DType::kI64; }

// safetensors spelling: "F32", "F16", "BF16", "I32", "I64".
std::string_view DTypeName(DType t);

inline float BitsToFloat(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
inline uint32_t FloatToBits(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  return bits;
}

inline float Bf16ToFloat(uint16_t h) { return BitsToFloat(static_cast<uint32_t>(h) << 16); }

inline uint16_t FloatToBf16(float f) {
  uint32_t bits = FloatToBits(f);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);  // NaN
  uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

inline float F16ToFloat(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0) {
    if (mant == 0) return BitsToFloat(sign);
    // Subnormal: value = mant * 2^-24.
    float v = static_cast<float>(mant) * 5.9604644775390625e-8f;
    return sign ? -v : v;
  }
  if (exp == 31) return BitsToFloat(sign | 0x7f800000u | (mant << 13));
  return BitsToFloat(sign | ((exp + 112) << 23) | (mant << 13));
}

inline uint16_t FloatToF16(float f) {
  uint32_t bits = FloatToBits(f);
  uint32_t sign = (bits >> 16) & 0x8000u;
  uint32_t abs = bits & 0x7fffffffu;
  if (abs > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);   // NaN
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // Rounds to >= 65520: inf
  if (abs < 0x38800000u) {
    // Result is subnormal (or zero): round abs * 2^24 to an integer, ties to even.
    float v = BitsToFloat(abs) * 16777216.0f;  // Exact: scaling by a power of two.
    uint32_t m = static_cast<uint32_t>(v);
    float rem = v - static_cast<float>(m);
    if (rem > 0.5f || (rem == 0.5f && (m & 1u))) ++m;
    return static_cast<uint16_t>(sign | m);
  }
  uint32_t rounding = 0xfffu + ((abs >> 13) & 1u);
  abs += rounding;
  return static_cast<uint16_t>(sign | ((abs - (112u << 23)) >> 13));
}

// Rounds a float32 value to the nearest value representable in `t` (identity for kF32).
inline float RoundTo(DType t, float v) {
  switch (t) {
    case DType::kF16:
      return F16ToFloat(FloatToF16(v));
    case DType::kBF16:
      return Bf16ToFloat(FloatToBf16(v));
    default:
      return v;
  }
}

// Converts n little-endian elements of a float dtype (F32, F16, BF16) to float32, exactly.
void ToFloat32(DType source, const uint8_t* bytes, size_t n, float* out);

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_CORE_DTYPE_H_
