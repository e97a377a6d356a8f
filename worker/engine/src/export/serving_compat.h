// Which vLLM tensor-parallel sizes can serve a checkpoint and with which kernels, from the model's
// geometry and the quantization format (docs/quality.md gives each rule with its source):
//   - vLLM's sharding: attention heads divide by TP, KV heads divide by TP or TP by them
//     (replicated), the MLP's intermediate size divides by TP;
//   - the formats: every shard's output rows a multiple of 8 (GEMM packs qweight, both formats
//     pack zero points, along the output), a row-parallel shard's input a multiple of the group
//     size (vLLM issue 21695: "The input size is not aligned with the quantized weight shape");
//   - the kernels, per Linear shard: AWQ GEMM → awq_marlin (group 32/64/128, out % 64, in % 128)
//     or awq (float16 only); compressed-tensors W4A16 → Machete (Hopper; group −1/64/128,
//     in % 64, out % 128), Marlin (group −1/32/64/128, out % 64, in % 128) or Exllama
//     (symmetric, float16 only).
// Dense layers only (q/k/v, o, gate/up, down); MoE expert geometry is checked the same way from
// config.json's moe_intermediate_size when present.
#ifndef QUANTD_ENGINE_EXPORT_SERVING_COMPAT_H_
#define QUANTD_ENGINE_EXPORT_SERVING_COMPAT_H_

#include <vector>

#include "model/model_config.h"
#include "quantd/engine/format_options.h"
#include "quantd/engine/quantize.h"

namespace quantd::engine {

inline constexpr int kTensorParallelSizes[] = {1, 2, 4, 8};

std::vector<TensorParallelFit> ServingCompatibility(const ModelConfig& config,
                                                    const QuantFormat& format);

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_EXPORT_SERVING_COMPAT_H_
