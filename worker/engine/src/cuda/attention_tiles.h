// The tile shapes the tensor-core attention kernel (attention.cu) is compiled for, so that the gpu
// test can check and time each; CausalAttention (kernels.h) runs the first of a head_dim's list,
// the fastest measured on the H100 (docs/perf.md).
#ifndef QUANTD_ENGINE_CUDA_ATTENTION_TILES_H_
#define QUANTD_ENGINE_CUDA_ATTENTION_TILES_H_

#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "core/dtype.h"
#include "cuda/kernels.h"

namespace quantd::engine::cuda {

struct AttentionTiles {
  int warps;       // warps of a block, 16 query rows each
  int keys;        // key/value rows of a shared-memory tile
  int min_blocks;  // resident blocks per SM asked of the compiler (caps the registers); 1: none
};

// The compiled shapes for head_dim (empty where unsupported), default first.
std::vector<AttentionTiles> AttentionTileChoices(int64_t head_dim);

// CausalAttention for a 16-bit md with the given tiles; false where they are not compiled.
bool CausalAttentionWithTiles(const AttentionTiles& tiles, const void* q, const void* k,
                              const void* v, float* out, void* out_op, int64_t tokens, int64_t len,
                              int64_t heads, int64_t kv_heads, int64_t head_dim, DType md,
                              const AttentionOptions& options, cudaStream_t stream);

}  // namespace quantd::engine::cuda

#endif  // QUANTD_ENGINE_CUDA_ATTENTION_TILES_H_
