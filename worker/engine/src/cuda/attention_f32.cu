// Exact float32 causal attention (attention_f32.h): one thread per query row, key/value tiles
// staged in shared memory, online softmax in float32, so no [len, len] score matrix exists at any
// block length. Scores are scale · (q · k), soft-capped where asked, over the causal keys inside
// the window (if any), as in the CPU reference.
#include <algorithm>
#include <cmath>

#include "cuda/attention_f32.h"

namespace quantd::engine::cuda {
namespace {

// Grid: x = block · query tiles + tile, y = head.
template <int D, int kQueries, int kKeys>
__global__ void __launch_bounds__(kQueries)
    AttentionF32Kernel(const float* q, const float* k, const float* v, float* out, int64_t len,
                       int64_t tiles, int64_t heads, int64_t kv_heads, float scale, float softcap,
                       int64_t window) {
  __shared__ float ks[kKeys][D];
  __shared__ float vs[kKeys][D];
  const int64_t block = blockIdx.x / tiles;
  const int64_t h = blockIdx.y;
  const int64_t kvh = h / (heads / kv_heads);
  const int64_t q0 = (blockIdx.x % tiles) * int64_t{kQueries};
  const int64_t t = q0 + threadIdx.x;
  const int64_t q_stride = heads * D;
  const int64_t kv_stride = kv_heads * D;
  const float* kb = k + block * len * kv_stride + kvh * D;
  const float* vb = v + block * len * kv_stride + kvh * D;

  float qr[D];
  float acc[D];
  const bool valid = t < len;
  const float* qrow = q + (block * len + (valid ? t : 0)) * q_stride + h * D;
#pragma unroll
  for (int i = 0; i < D; ++i) {
    qr[i] = qrow[i];
    acc[i] = 0.0f;
  }
  float m = -INFINITY;
  float l = 0.0f;
  const int64_t last = std::min<int64_t>(len, q0 + kQueries);  // keys needed by this tile
  const int64_t first = window > 0 ? std::max<int64_t>(0, q0 - window + 1) / kKeys * kKeys : 0;
  for (int64_t k0 = first; k0 < last; k0 += kKeys) {
    __syncthreads();
    for (int idx = threadIdx.x; idx < kKeys * D; idx += kQueries) {
      const int r = idx / D;
      const int c = idx % D;
      const bool in = k0 + r < len;
      ks[r][c] = in ? kb[(k0 + r) * kv_stride + c] : 0.0f;
      vs[r][c] = in ? vb[(k0 + r) * kv_stride + c] : 0.0f;
    }
    __syncthreads();
    if (!valid) continue;
    const int n = static_cast<int>(std::min<int64_t>(kKeys, t - k0 + 1));
    const int j0 = window > 0 ? static_cast<int>(std::max<int64_t>(0, t - window + 1 - k0)) : 0;
    for (int j = j0; j < n; ++j) {
      float s = 0.0f;
#pragma unroll
      for (int i = 0; i < D; ++i) s += qr[i] * ks[j][i];
      s *= scale;
      if (softcap > 0.0f) s = softcap * tanhf(s / softcap);
      if (s > m) {
        const float corr = expf(m - s);
        l *= corr;
#pragma unroll
        for (int i = 0; i < D; ++i) acc[i] *= corr;
        m = s;
      }
      const float p = expf(s - m);
      l += p;
#pragma unroll
      for (int i = 0; i < D; ++i) acc[i] += p * vs[j][i];
    }
  }
  if (!valid) return;
  float* orow = out + (block * len + t) * q_stride + h * D;
  const float inv = 1.0f / l;
#pragma unroll
  for (int i = 0; i < D; ++i) orow[i] = acc[i] * inv;
}

template <int D, int kQueries, int kKeys>
void Launch(const float* q, const float* k, const float* v, float* out, int64_t tokens, int64_t len,
            int64_t heads, int64_t kv_heads, const AttentionOptions& o, cudaStream_t stream) {
  const int64_t tiles = (len + kQueries - 1) / kQueries;
  const dim3 grid(static_cast<unsigned>(tokens / len * tiles), static_cast<unsigned>(heads));
  AttentionF32Kernel<D, kQueries, kKeys><<<grid, kQueries, 0, stream>>>(
      q, k, v, out, len, tiles, heads, kv_heads, o.scale, o.softcap, o.window);
}

}  // namespace

bool CausalAttentionF32(const float* q, const float* k, const float* v, float* out, int64_t tokens,
                        int64_t len, int64_t heads, int64_t kv_heads, int64_t head_dim,
                        const AttentionOptions& options, cudaStream_t stream) {
  switch (head_dim) {
    case 64:
      Launch<64, 64, 64>(q, k, v, out, tokens, len, heads, kv_heads, options, stream);
      return true;
    case 96:
      Launch<96, 64, 32>(q, k, v, out, tokens, len, heads, kv_heads, options, stream);
      return true;
    case 128:
      Launch<128, 64, 32>(q, k, v, out, tokens, len, heads, kv_heads, options, stream);
      return true;
    case 256:
      Launch<256, 64, 16>(q, k, v, out, tokens, len, heads, kv_heads, options, stream);
      return true;
    default:
      return false;
  }
}

}  // namespace quantd::engine::cuda
