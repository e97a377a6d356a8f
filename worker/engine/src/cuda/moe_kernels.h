// Kernels of the sparse MoE block on the GPU (cuda/moe_block.h): moving token rows into the
// experts' order and adding the experts' weighted outputs back, rounding as the CPU reference
// (backend/cpu/moe_block.cc) does. Asynchronous on `stream`, as kernels.h.
#ifndef QUANTD_ENGINE_CUDA_MOE_KERNELS_H_
#define QUANTD_ENGINE_CUDA_MOE_KERNELS_H_

#include <cuda_runtime.h>

#include <cstdint>

#include "core/dtype.h"

namespace quantd::engine::cuda {

// dst[i, :] = src[index[i], :] for i < n, rows of `row_bytes` bytes (any element type).
void GatherRowsByIndex(const void* src, int64_t row_bytes, const int32_t* index, int64_t n,
                       void* dst, cudaStream_t stream);

// y[token[i], j] = md(y[token[i], j] + md(out[i, j] · weight[i])) for i < n, j < cols: one
// expert's output rows added into the block output (each token at most once per expert, so no
// two threads touch one element; experts are added in increasing index, one launch each).
void ScatterAddWeighted(const float* out, const float* weight, const int32_t* token, int64_t n,
                        int64_t cols, DType md, float* y, cudaStream_t stream);

// Qwen2-MoE's shared expert: y[t, j] = md(y[t, j] + md(md(sigmoid(gate[t])) · out[t, j])).
void AddSigmoidGated(const float* out, const float* gate, int64_t n, int64_t cols, DType md,
                     float* y, cudaStream_t stream);

}  // namespace quantd::engine::cuda

#endif  // QUANTD_ENGINE_CUDA_MOE_KERNELS_H_
