// The compressed-tensors "pack-quantized" W4A16 form of the same AWQ decisions (llm-compressor's
// output format, read natively by vLLM's CompressedTensorsWNA16 scheme). docs/compressed-tensors.md
// gives the layout with its sources; per quantized Linear P:
//
//   P.weight_packed      int32 [out, in/8]        code of (o, 8j+i) in bits 4i..4i+3 of word (o, j)
//   P.weight_scale       dtype [out, in/G]        the group scales (G = in for per-channel)
//   P.weight_zero_point  int32 [out/8, in/G]      (asymmetric only) zero of (8j+i, g) in bits 4i..
//   P.weight_shape       int64 [2]                {out, in}
//   P.bias               dtype [out]              where the Linear has one
//
// Codes and zero points are stored unsigned: compressed-tensors quantizes to signed int4 q and zero
// z in [−8, 7] and packs q + 8 and z + 8, so the stored nibbles are exactly AutoAWQ's codes (0..15)
// and zeros; symmetric codes are q + 8 (vLLM's uint4b8) and carry no zero point.
#ifndef QUANTD_ENGINE_EXPORT_COMPRESSED_TENSORS_EXPORT_H_
#define QUANTD_ENGINE_EXPORT_COMPRESSED_TENSORS_EXPORT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "awq/gemm_packing.h"
#include "export/checkpoint_writer.h"
#include "nlohmann/json.hpp"
#include "quantd/engine/format_options.h"

namespace quantd::engine {

struct PackedLinear;

// The compressed-tensors state dict from the AutoAWQ one (PlanAwqStateDict): each
// qweight/qzeros/scales triple becomes weight_packed, weight_scale, weight_zero_point (when
// zero_point) and weight_shape; a quantized Linear's bias and every float tensor take `dtype`.
std::vector<PlannedTensor> PlanCompressedTensorsStateDict(const std::vector<PlannedTensor>& awq,
                                                          bool zero_point, DType dtype);

// config.json's quantization_config: quant_method compressed-tensors, format pack-quantized, one
// config group targeting Linear (4-bit int weights, group or channel strategy, symmetric or not,
// static, no activation quantization) and `ignore`, the modules left in float.
nlohmann::json CompressedTensorsQuantizationConfig(const QuantFormat& format,
                                                   const std::vector<std::string>& ignore);

// The tensors of one Linear, repacked from its GEMM form.
struct CompressedTensorsLinear {
  int64_t out_features = 0, in_features = 0, groups = 0;
  std::vector<int32_t> weight_packed;      // [out, in / 8]
  std::vector<int32_t> weight_zero_point;  // [out / 8, groups], empty when symmetric
  std::vector<float> weight_scale;         // [out, groups]
};
CompressedTensorsLinear RepackCompressedTensors(const PackedLinear& gemm, bool zero_point);

// The inverse: the GEMM form of a compressed-tensors Linear whose weight_scale holds 16-bit values
// of `scale_dtype` ([out, groups] bits); symmetric (no weight_zero_point) gets zero points 8. A
// resumed run reads its kept layers back from the staged checkpoint this way.
GemmPackedLinear GemmFromCompressedTensors(const CompressedTensorsLinear& ct,
                                           const std::vector<uint16_t>& weight_scale_bits,
                                           DType scale_dtype);

// Writes `base`.weight_packed / weight_scale / weight_zero_point / weight_shape (/ bias).
absl::Status WriteCompressedTensorsLinear(CheckpointWriter* writer, const std::string& base,
                                          const PackedLinear& gemm, bool zero_point);

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_EXPORT_COMPRESSED_TENSORS_EXPORT_H_
