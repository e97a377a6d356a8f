// AutoAWQ's GEMM layout (WQLinear_GEMM, spec/awq.md §7.1): 4-bit codes packed eight to an int32
// along the output dimension in the nibble order [0, 2, 4, 6, 1, 3, 5, 7].
#ifndef QUANTD_ENGINE_AWQ_GEMM_PACKING_H_
#define QUANTD_ENGINE_AWQ_GEMM_PACKING_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "core/tensor.h"

namespace quantd::engine {

// Nibble i of a packed word holds output channel 8c + kAwqPackOrder[i].
inline constexpr int kAwqPackOrder[8] = {0, 2, 4, 6, 1, 3, 5, 7};
// Output channel 8c + j is nibble kAwqReverseOrder[j].
inline constexpr int kAwqReverseOrder[8] = {0, 4, 1, 5, 2, 6, 3, 7};

// The tensors of one quantized Linear as the checkpoint stores them.
struct GemmPackedLinear {
  int64_t in_features = 0;
  int64_t out_features = 0;
  int64_t group_size = 0;
  std::vector<int32_t> qweight;               // [in, out / 8]
  std::vector<int32_t> qzeros;                // [in / group, out / 8]
  std::vector<uint16_t> scales;               // [in / group, out], float16 bits
  std::optional<std::vector<uint16_t>> bias;  // [out], float16 bits
};

// Packs codes [out, in] (0..15), zeros [out, in/group] and float16-exact scales [out, in/group],
// all in nn.Linear (output-major) order, transposing to the GEMM layout. out % 8 == 0.
GemmPackedLinear PackGemm(const uint8_t* codes, const uint8_t* zeros, const float* scales,
                          int64_t out_features, int64_t in_features, int64_t group_size,
                          const std::optional<Tensor>& bias);

// A fused Linear (Phi-3's qkv_proj) from its parts, stacked along the output dimension in order:
// the columns of qweight, qzeros and scales and the bias entries are concatenated (every part has
// out % 8 == 0, so no packed word straddles two parts). The parts share in_features and group size.
GemmPackedLinear ConcatOutputs(const std::vector<const GemmPackedLinear*>& parts);

// The inverse, as a loader does: codes [out, in], zeros and scales [out, in/group].
struct UnpackedLinear {
  std::vector<uint8_t> codes;
  std::vector<uint8_t> zeros;
  std::vector<float> scales;
};
UnpackedLinear UnpackGemm(const GemmPackedLinear& packed);

// The dequantized float16 weight [out, in]: (code − zero) · scale rounded to float16, as
// AutoAWQ's dequantize_gemm computes it.
Tensor DequantizeGemm(const GemmPackedLinear& packed);

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_AWQ_GEMM_PACKING_H_
