// AutoAWQ's GEMM layout (WQLinear_GEMM, spec/awq.md §7.1): 4-bit codes packed eight to an int32
// along the output dimension in the nibble order [0, 2, 4, 6, 1, 3, 5, 7]. It is also how a
// backend hands a quantized Linear to the pipeline whatever the output format: the
// compressed-tensors exporter repacks it (export/compressed_tensors_export.h), symmetric codes
// carry zero point 8 and the scales are 16-bit values in `scale_dtype`.
#ifndef QUANTD_ENGINE_AWQ_GEMM_PACKING_H_
#define QUANTD_ENGINE_AWQ_GEMM_PACKING_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "core/dtype.h"
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
  int64_t group_size = 0;                     // in_features for per-channel
  DType scale_dtype = DType::kF16;            // of scales and bias: kF16 or kBF16
  std::vector<int32_t> qweight;               // [in, out / 8]
  std::vector<int32_t> qzeros;                // [in / group, out / 8]
  std::vector<uint16_t> scales;               // [in / group, out], scale_dtype bits
  std::optional<std::vector<uint16_t>> bias;  // [out], scale_dtype bits
};

// 16-bit value of `dtype` (kF16 or kBF16) and back.
uint16_t ToHalfBits(DType dtype, float value);
float FromHalfBits(DType dtype, uint16_t bits);

// Packs codes [out, in] (0..15), zeros [out, in/group] and scales [out, in/group] exact in
// `scale_dtype`, all in nn.Linear (output-major) order, transposing to the GEMM layout.
// out % 8 == 0. The bias is rounded to scale_dtype.
GemmPackedLinear PackGemm(const uint8_t* codes, const uint8_t* zeros, const float* scales,
                          int64_t out_features, int64_t in_features, int64_t group_size,
                          const std::optional<Tensor>& bias, DType scale_dtype = DType::kF16);

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

// The dequantized weight [out, in]: (code − zero) · scale rounded to scale_dtype, as AutoAWQ's
// dequantize_gemm computes it in float16 (and vLLM's kernels in the model's dtype).
Tensor DequantizeGemm(const GemmPackedLinear& packed);

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_AWQ_GEMM_PACKING_H_
