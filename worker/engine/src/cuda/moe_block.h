// A sparse MoE block on the GPU, computing what the CPU reference's MoeBlockForward
// (backend/cpu/moe_block.h) computes, in the same rounding order:
//   - the router's logits come back to the host once per forward and are routed there by the CPU
//     reference's own RouteTokens (so both backends route identically, ties included);
//   - the token rows are gathered once into the experts' order (one permutation per layer; each
//     expert's rows in the CPU's tokens_of order, which the clip search samples);
//   - each expert with tokens runs the dense MLP forward (MlpForward) on its contiguous slice of
//     rows, and its weighted output is added into the block output; experts are added in
//     increasing index, as the CPU's index_add_ loop.
// The per-expert launches are queued from a host loop without synchronisation (4 launches per
// expert); docs/moe.md, "CUDA", says why this and not a grouped GEMM.
#ifndef QUANTD_ENGINE_CUDA_MOE_BLOCK_H_
#define QUANTD_ENGINE_CUDA_MOE_BLOCK_H_

#include <cuda_runtime.h>

#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "cuda/device_layer.h"
#include "cuda/gemm.h"

namespace quantd::engine::cuda {

// The md operands a block forward uses (trial weights substitute experts' gate/up).
struct MoeOperands {
  const void* router = nullptr;
  std::vector<MlpWeights> experts;
  std::optional<MlpWeights> shared_expert;
  const void* shared_expert_gate = nullptr;
};
MoeOperands MoeOperandsOf(const DeviceMoe& moe, const ModelConfig& config, DType md);

// router(x) on the device, routed on the host into `routing` (one host synchronisation).
absl::Status RouteOnDevice(Gemm& gemm, const LayerGeometry& g, const MoeOperands& w,
                           const void* x_op, DeviceRouting* routing, ForwardScratch* s,
                           cudaStream_t stream);

// out [tokens, hidden] (float32, md values) = the block on x_op [tokens, hidden] (md operand)
// with `routing`. `routed_x`: the rows already gathered into the experts' order (the captured
// routed input), or null to gather them here. With `cap`, gathers into cap->routed_input and
// keeps the experts' (and the shared expert's) down_proj inputs, in `down_type`.
absl::Status MoeBlockForward(Gemm& gemm, const LayerGeometry& g, const MoeOperands& w,
                             const DeviceRouting& routing, const void* x_op, const void* routed_x,
                             float* out, DeviceMoeCapture* cap, DType down_type, ForwardScratch* s,
                             cudaStream_t stream);

}  // namespace quantd::engine::cuda

#endif  // QUANTD_ENGINE_CUDA_MOE_BLOCK_H_
