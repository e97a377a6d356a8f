// Fused causal GQA attention (kernels.h). 16-bit models run a flash-attention-2 style kernel on
// the tensor cores: a block of kWarps warps owns kWarps · 16 query rows of one head, each warp 16
// rows; key/value tiles are converted from float32 to md while they are staged in shared memory
// (lossless: the values are representable in md); S = Q·Kᵀ and O += P·V are mma.sync m16n8k16
// with float32 accumulation; the softmax is online in float32 (base 2, the scale folded in) and P
// is rounded to md before P·V, as torch's SDPA does in md. Tiles above the diagonal are never
// loaded and a warp skips the key tiles that lie wholly above its rows, so no [len, len] matrix
// exists. Float32 models keep the exact float32 kernel (attention_f32.cu).
//
// Pipelining without cp.async (the inputs need a conversion): while a warp multiplies with the K
// tile in shared memory, the V tile of the same step is in flight into registers, and while it
// multiplies with V the next K tile is; two barriers per key tile.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "cuda/attention_f32.h"
#include "cuda/kernels.h"

namespace quantd::engine::cuda {
namespace {

// Two md values packed into 32 bits, the lower column in the low half (the mma fragment order).
template <typename T>
__device__ __forceinline__ uint32_t PackPair(float lo, float hi) {
  uint32_t r;
  if constexpr (std::is_same_v<T, __half>) {
    const __half2 h = __floats2half2_rn(lo, hi);
    memcpy(&r, &h, 4);
  } else {
    const __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    memcpy(&r, &h, 4);
  }
  return r;
}

template <typename T>
__device__ __forceinline__ float2 UnpackPair(uint32_t r) {
  if constexpr (std::is_same_v<T, __half>) {
    __half2 h;
    memcpy(&h, &r, 4);
    return __half22float2(h);
  } else {
    __nv_bfloat162 h;
    memcpy(&h, &r, 4);
    return __bfloat1622float2(h);
  }
}

// d += a · b for a 16×16 md A fragment and a 16×8 B fragment, float32 accumulators.
template <typename T>
__device__ __forceinline__ void Mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                    uint32_t b1) {
  if constexpr (std::is_same_v<T, __half>) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

// Four 8×8 md matrices from shared memory (each transposed if kTransposed); lane i gives the
// address of row i % 8 of matrix i / 8.
template <bool kTransposed = false>
__device__ __forceinline__ void LoadMatrices(uint32_t (&r)[4], const void* row) {
  const auto a = static_cast<uint32_t>(__cvta_generic_to_shared(row));
  if constexpr (kTransposed) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a)
                 : "memory");
  } else {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a)
                 : "memory");
  }
}

// kRows rows × D float32 columns of a tile in flight through registers (16-byte loads, coalesced
// along the rows) and their md copy in shared memory, rows of kStride elements. Rows at or past
// `len` read as zero.
template <typename T, int D, int kRows, int kThreads, int kStride>
struct TileStage {
  static constexpr int kVectors = kRows * D / 4 / kThreads;
  static_assert(kRows * D % (4 * kThreads) == 0, "the tile must split evenly over the threads");
  float4 v[kVectors];

  // Each thread moves one 4-column slice of every kRowStep-th row.
  static constexpr int kRowStep = kThreads / (D / 4);
  static_assert(kThreads % (D / 4) == 0, "a thread keeps one column slice");

  // Rows r0.. of `base` (row stride `stride` floats).
  __device__ __forceinline__ void Load(const float* base, int64_t r0, int64_t len, int64_t stride) {
    const int r = static_cast<int>(threadIdx.x) / (D / 4);
    const int c = static_cast<int>(threadIdx.x) % (D / 4) * 4;
    const float* p = base + (r0 + r) * stride + c;
    const int rows = static_cast<int>(std::min<int64_t>(len - r0, kRows));  // may be ≤ 0
#pragma unroll
    for (int i = 0; i < kVectors; ++i) {
      v[i] = r + i * kRowStep < rows
                 ? __ldg(reinterpret_cast<const float4*>(p + i * kRowStep * stride))
                 : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    }
  }

  __device__ __forceinline__ void Store(T* smem) const {
    const int r = static_cast<int>(threadIdx.x) / (D / 4);
    const int c = static_cast<int>(threadIdx.x) % (D / 4) * 4;
#pragma unroll
    for (int i = 0; i < kVectors; ++i) {
      *reinterpret_cast<uint2*>(smem + (r + i * kRowStep) * kStride + c) =
          make_uint2(PackPair<T>(v[i].x, v[i].y), PackPair<T>(v[i].z, v[i].w));
    }
  }
};

// Grid: x = (block · tiles + reversed query tile) · heads + head, so the heads sharing a KV head
// and the query tiles of one block run together (K/V stay in L2) and the longest tiles start first.
template <typename T, int D, int kWarps, int kKeys>
__global__ void __launch_bounds__(kWarps * 32)
    TensorCoreAttentionKernel(const float* __restrict__ q, const float* __restrict__ k,
                              const float* __restrict__ v, float* __restrict__ out,
                              T* __restrict__ out_op, int64_t len, int64_t tiles, int heads,
                              int kv_heads, float scale_log2) {
  constexpr int kThreads = kWarps * 32;
  constexpr int kQueries = kWarps * 16;
  constexpr int kStride = D + 8;  // padded rows: the 8 rows of an ldmatrix hit distinct banks
  static_assert(kQueries % kKeys == 0 && kQueries <= 2 * kKeys && kKeys % 16 == 0 && D % 16 == 0,
                "the query tile is staged through the key/value buffers");
  __shared__ __align__(16) T kv[2 * kKeys * kStride];
  T* const ks = kv;
  T* const vs = kv + kKeys * kStride;

  const int64_t id = blockIdx.x;
  const int h = static_cast<int>(id % heads);
  const int64_t rest = id / heads;
  const int64_t q0 = (tiles - 1 - rest % tiles) * kQueries;
  const int64_t block = rest / tiles;
  const int kvh = h / (heads / kv_heads);
  const int64_t q_stride = int64_t{heads} * D;
  const int64_t kv_stride = int64_t{kv_heads} * D;
  const float* const qb = q + block * len * q_stride + h * D;
  const float* const kb = k + block * len * kv_stride + kvh * D;
  const float* const vb = v + block * len * kv_stride + kvh * D;

  const int warp = static_cast<int>(threadIdx.x) / 32;
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int g = lane / 4;       // fragment row (and row + 8)
  const int c2 = lane % 4 * 2;  // fragment column pair
  const int64_t row0 = q0 + warp * 16;
  const bool warp_valid = row0 < len;

  // Q tile → shared memory (through the K/V buffers) → this warp's A fragments.
  TileStage<T, D, kKeys, kThreads, kStride> stage;
#pragma unroll
  for (int part = 0; part < kQueries / kKeys; ++part) {
    stage.Load(qb, q0 + part * kKeys, len, q_stride);
    stage.Store(kv + part * kKeys * kStride);
  }
  __syncthreads();
  uint32_t qf[D / 16][4];
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    LoadMatrices(qf[kk], kv + (warp * 16 + lane % 8 + (lane / 8) % 2 * 8) * kStride + kk * 16 +
                             lane / 16 * 8);
  }
  __syncthreads();

  const int64_t key_end = std::min<int64_t>(len, q0 + kQueries);
  const int tiles_k = static_cast<int>((key_end + kKeys - 1) / kKeys);
  stage.Load(kb, 0, len, kv_stride);
  stage.Store(ks);
  stage.Load(vb, 0, len, kv_stride);
  __syncthreads();

  float o[D / 8][4] = {};
  float m[2] = {-INFINITY, -INFINITY};  // running row maxima (scaled, base 2)
  float l[2] = {0.0f, 0.0f};            // this thread's part of the row sums
  for (int kt = 0; kt < tiles_k; ++kt) {
    const int64_t k0 = int64_t{kt} * kKeys;
    // Rows and k0 are multiples of 16: an active warp has at least one unmasked key per row.
    const bool active = warp_valid && k0 <= row0;
    uint32_t p[kKeys / 16][4];
    if (active) {
      float s[kKeys / 8][4] = {};
#pragma unroll
      for (int j = 0; j < kKeys / 8; ++j) {
#pragma unroll
        for (int kk = 0; kk < D / 16; kk += 2) {
          uint32_t b[4];
          LoadMatrices(b, ks + (j * 8 + lane % 8) * kStride + kk * 16 + lane / 8 * 8);
          Mma<T>(s[j], qf[kk], b[0], b[1]);
          Mma<T>(s[j], qf[kk + 1], b[2], b[3]);
        }
      }
      // Offsets from k0: this thread's rows g, g + 8 see keys ≤ row and < len.
      const int row_off = static_cast<int>(row0 - k0) + g;
      const int key_end = static_cast<int>(std::min<int64_t>(len - k0, kKeys));
      const bool masked = row_off < kKeys - 1 || key_end < kKeys;
      float mx[2] = {m[0], m[1]};
#pragma unroll
      for (int j = 0; j < kKeys / 8; ++j) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          float x = s[j][e] * scale_log2;
          const int key = j * 8 + c2 + (e & 1);
          if (masked && (key > row_off + (e >> 1) * 8 || key >= key_end)) x = -INFINITY;
          s[j][e] = x;
          mx[e >> 1] = fmaxf(mx[e >> 1], x);
        }
      }
      float base[2], corr[2];
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
        mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
        base[r] = mx[r] == -INFINITY ? 0.0f : mx[r];
        corr[r] = exp2f(m[r] - base[r]);
        m[r] = mx[r];
        l[r] *= corr[r];
      }
#pragma unroll
      for (int j = 0; j < kKeys / 8; ++j) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          s[j][e] = exp2f(s[j][e] - base[e >> 1]);
          l[e >> 1] += s[j][e];
        }
      }
#pragma unroll
      for (int j = 0; j < D / 8; ++j) {
#pragma unroll
        for (int e = 0; e < 4; ++e) o[j][e] *= corr[e >> 1];
      }
      // The C fragments of key columns 16kk.. and 16kk + 8.. are the A fragment of P's k-step kk.
#pragma unroll
      for (int kk = 0; kk < kKeys / 16; ++kk) {
        p[kk][0] = PackPair<T>(s[2 * kk][0], s[2 * kk][1]);
        p[kk][1] = PackPair<T>(s[2 * kk][2], s[2 * kk][3]);
        p[kk][2] = PackPair<T>(s[2 * kk + 1][0], s[2 * kk + 1][1]);
        p[kk][3] = PackPair<T>(s[2 * kk + 1][2], s[2 * kk + 1][3]);
      }
    }
    // Every warp finished the previous step's P·V before the last barrier: V may be replaced.
    stage.Store(vs);
    const bool more = kt + 1 < tiles_k;
    if (more) stage.Load(kb, k0 + kKeys, len, kv_stride);
    __syncthreads();
    if (active) {
#pragma unroll
      for (int kk = 0; kk < kKeys / 16; ++kk) {
#pragma unroll
        for (int j = 0; j < D / 16; ++j) {
          uint32_t b[4];
          LoadMatrices<true>(
              b, vs + (kk * 16 + lane % 8 + (lane / 8) % 2 * 8) * kStride + j * 16 + lane / 16 * 8);
          Mma<T>(o[2 * j], p[kk], b[0], b[1]);
          Mma<T>(o[2 * j + 1], p[kk], b[2], b[3]);
        }
      }
    }
    if (more) {
      // Every warp passed the barrier after its Q·Kᵀ: K may be replaced.
      stage.Store(ks);
      stage.Load(vb, k0 + kKeys, len, kv_stride);
    }
    __syncthreads();
  }

  if (!warp_valid) return;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
    const int64_t row = row0 + g + r * 8;
    if (row >= len) continue;
    const float inv = 1.0f / l[r];
    const int64_t at = (block * len + row) * q_stride + h * D + c2;
#pragma unroll
    for (int j = 0; j < D / 8; ++j) {
      const uint32_t pair = PackPair<T>(o[j][2 * r] * inv, o[j][2 * r + 1] * inv);
      if (out != nullptr) *reinterpret_cast<float2*>(out + at + j * 8) = UnpackPair<T>(pair);
      if (out_op != nullptr) *reinterpret_cast<uint32_t*>(out_op + at + j * 8) = pair;
    }
  }
}

template <typename T, int D, int kWarps, int kKeys>
void LaunchTensorCore(const float* q, const float* k, const float* v, float* out, void* out_op,
                      int64_t tokens, int64_t len, int64_t heads, int64_t kv_heads,
                      cudaStream_t stream) {
  constexpr int kQueries = kWarps * 16;
  const int64_t tiles = (len + kQueries - 1) / kQueries;
  const int64_t grid = tokens / len * tiles * heads;
  const auto scale_log2 = static_cast<float>(1.4426950408889634 / std::sqrt(double{D}));
  TensorCoreAttentionKernel<T, D, kWarps, kKeys>
      <<<static_cast<unsigned>(grid), kWarps * 32, 0, stream>>>(
          q, k, v, out, static_cast<T*>(out_op), len, tiles, static_cast<int>(heads),
          static_cast<int>(kv_heads), scale_log2);
}

template <typename T>
bool LaunchForHeadDim(const float* q, const float* k, const float* v, float* out, void* out_op,
                      int64_t tokens, int64_t len, int64_t heads, int64_t kv_heads,
                      int64_t head_dim, cudaStream_t stream) {
  switch (head_dim) {
    case 64:
      LaunchTensorCore<T, 64, 4, 64>(q, k, v, out, out_op, tokens, len, heads, kv_heads, stream);
      return true;
    case 128:
      LaunchTensorCore<T, 128, 4, 32>(q, k, v, out, out_op, tokens, len, heads, kv_heads, stream);
      return true;
    default:
      return false;
  }
}

}  // namespace

bool CausalAttention(const float* q, const float* k, const float* v, float* out, void* out_op,
                     int64_t tokens, int64_t len, int64_t heads, int64_t kv_heads, int64_t head_dim,
                     DType md, cudaStream_t stream) {
  if (tokens <= 0 || len <= 0) return true;
  switch (md) {
    case DType::kF16:
      return LaunchForHeadDim<__half>(q, k, v, out, out_op, tokens, len, heads, kv_heads, head_dim,
                                      stream);
    case DType::kBF16:
      return LaunchForHeadDim<__nv_bfloat16>(q, k, v, out, out_op, tokens, len, heads, kv_heads,
                                             head_dim, stream);
    default:
      return out_op == nullptr &&
             CausalAttentionF32(q, k, v, out, tokens, len, heads, kv_heads, head_dim, stream);
  }
}

}  // namespace quantd::engine::cuda
