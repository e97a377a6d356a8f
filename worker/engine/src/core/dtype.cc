#include "core/dtype.h"

namespace quantd::engine {

std::string_view DTypeName(DType t) {
  switch (t) {
    case DType::kF32:
      return "F32";
    case DType::kF16:
      return "F16";
    case DType::kBF16:
      return "BF16";
    case DType::kI32:
      return "I32";
  }
  return "?";
}

void ToFloat32(DType source, const uint8_t* bytes, size_t n, float* out) {
  if (source == DType::kF32) {
    if (n > 0) std::memcpy(out, bytes, n * 4);  // An empty tensor may have null pointers.
    return;
  }
  auto half = [bytes](size_t i) {
    return static_cast<uint16_t>(bytes[2 * i] | (bytes[2 * i + 1] << 8));
  };
  if (source == DType::kBF16) {
    for (size_t i = 0; i < n; ++i) out[i] = Bf16ToFloat(half(i));
  } else {
    for (size_t i = 0; i < n; ++i) out[i] = F16ToFloat(half(i));
  }
}

}  // namespace quantd::engine
