// The exact float32 causal attention of a float32 model (md = float32): one thread per query row,
// float32 FMAs, online softmax in float32. 16-bit models use the tensor-core kernel (attention.cu).
#ifndef QUANTD_ENGINE_CUDA_ATTENTION_F32_H_
#define QUANTD_ENGINE_CUDA_ATTENTION_F32_H_

#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/kernels.h"

namespace quantd::engine::cuda {

// Shapes as CausalAttention (kernels.h); out [tokens, heads · d] float32. Supported head_dim: 64,
// 128. Returns false for others.
bool CausalAttentionF32(const float* q, const float* k, const float* v, float* out, int64_t tokens,
                        int64_t len, int64_t heads, int64_t kv_heads, int64_t head_dim,
                        const AttentionOptions& options, cudaStream_t stream);

}  // namespace quantd::engine::cuda

#endif  // QUANTD_ENGINE_CUDA_ATTENTION_F32_H_
