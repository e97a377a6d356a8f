// Fused causal GQA attention (kernels.h). 16-bit models run a flash-attention-2 style kernel on
// the tensor cores: a block of kWarps warps owns kWarps · 16 query rows of one head, each warp 16
// rows; md key/value tiles stream into shared memory through cp.async, double-buffered (the next
// tile is in flight while the warps work on this one); S = Q·Kᵀ and O += P·V are mma.sync
// m16n8k16 with float32 accumulation; the softmax is online in float32 (base 2, the scale folded
// in) and P is rounded to md before P·V, as torch's SDPA does in md. Key tiles above the diagonal
// are never loaded and a warp skips the tiles that lie wholly above its rows, so no [len, len]
// matrix exists. A sliding window skips the key tiles wholly before it the same way; Gemma 2's
// soft-capping (c · tanh(s / c)) is applied to the scaled scores before the softmax. Float32
// models keep the exact float32 kernel (attention_f32.cu).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <vector>

#include "cuda/attention_f32.h"
#include "cuda/attention_tiles.h"
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

// 2^x in one MUFU instruction (relative error ~2⁻²²; subnormal results flush to 0, far below
// md's resolution of P); 2^−inf = 0. exp2f would add a denormal-range fix-up around it.
__device__ __forceinline__ float Exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
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

// Starts the copy of rows [r0, r0 + kRows) × D of an md slice (row stride `stride` elements)
// into shared memory rows of kStride elements, 16 bytes per cp.async; rows at or past `len` are
// zero-filled (nothing is read for them).
template <typename T, int D, int kRows, int kThreads, int kStride>
__device__ __forceinline__ void CopyTileAsync(T* smem, const T* base, int64_t r0, int64_t len,
                                              int64_t stride) {
  constexpr int kChunksPerRow = D * static_cast<int>(sizeof(T)) / 16;
  constexpr int kElems = 16 / static_cast<int>(sizeof(T));
  static_assert(kRows * kChunksPerRow % kThreads == 0, "the tile must split evenly");
  const int64_t rows = std::min<int64_t>(len - r0, kRows);  // may be ≤ 0
#pragma unroll
  for (int i = 0; i < kRows * kChunksPerRow / kThreads; ++i) {
    const int idx = static_cast<int>(threadIdx.x) + i * kThreads;
    const int r = idx / kChunksPerRow;
    const int c = idx % kChunksPerRow * kElems;
    const bool in = r < rows;
    const T* src = in ? base + (r0 + r) * stride + c : base;
    const auto dst = static_cast<uint32_t>(__cvta_generic_to_shared(smem + r * kStride + c));
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src),
                 "r"(in ? 16 : 0)
                 : "memory");
  }
}

__device__ __forceinline__ void CommitCopies() {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}

// Waits until at most `kPending` of this thread's committed copy groups are still in flight.
template <int kPending>
__device__ __forceinline__ void WaitCopies() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
}

// Grid: x = (block · tiles + reversed query tile) · heads + head, so the heads sharing a KV head
// and the query tiles of one block run together (K/V stay in L2) and the longest tiles start first.
template <typename T, int D, int kWarps, int kKeys, int kMinBlocks>
__global__ void __launch_bounds__(kWarps * 32, kMinBlocks)
    TensorCoreAttentionKernel(const T* __restrict__ q, const T* __restrict__ k,
                              const T* __restrict__ v, float* __restrict__ out,
                              T* __restrict__ out_op, int64_t len, int64_t tiles, int heads,
                              int kv_heads, float scale, float scale_log2, float softcap,
                              int64_t window) {
  constexpr int kThreads = kWarps * 32;
  constexpr int kQueries = kWarps * 16;
  constexpr int kStride = D + 8;  // padded rows: the 8 rows of an ldmatrix hit distinct banks
  constexpr int kTile = kKeys * kStride;
  static_assert(kQueries <= 2 * kKeys && kKeys % 16 == 0 && D % 16 == 0,
                "the query tile is staged through the second stage's buffers");
  __shared__ __align__(16) T smem[4 * kTile];  // [stage][K, V][kKeys][kStride]

  const int64_t id = blockIdx.x;
  const int h = static_cast<int>(id % heads);
  const int64_t rest = id / heads;
  const int64_t q0 = (tiles - 1 - rest % tiles) * kQueries;
  const int64_t block = rest / tiles;
  const int kvh = h / (heads / kv_heads);
  const int64_t q_stride = int64_t{heads} * D;
  const int64_t kv_stride = int64_t{kv_heads} * D;
  const T* const qb = q + block * len * q_stride + h * D;
  const T* const kb = k + block * len * kv_stride + kvh * D;
  const T* const vb = v + block * len * kv_stride + kvh * D;

  const int warp = static_cast<int>(threadIdx.x) / 32;
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int g = lane / 4;       // fragment row (and row + 8)
  const int c2 = lane % 4 * 2;  // fragment column pair
  const int64_t row0 = q0 + warp * 16;
  const bool warp_valid = row0 < len;

  // Key tiles before the window of the block's first query are never needed.
  const int kt_first =
      window > 0 ? static_cast<int>(std::max<int64_t>(0, q0 - window + 1) / kKeys) : 0;
  // The Q tile through stage 1's buffers into this warp's A fragments; the first key/value tile
  // into stage 0 meanwhile.
  CopyTileAsync<T, D, kQueries, kThreads, kStride>(smem + 2 * kTile, qb, q0, len, q_stride);
  CommitCopies();
  CopyTileAsync<T, D, kKeys, kThreads, kStride>(smem, kb, int64_t{kt_first} * kKeys, len,
                                                kv_stride);
  CopyTileAsync<T, D, kKeys, kThreads, kStride>(smem + kTile, vb, int64_t{kt_first} * kKeys, len,
                                                kv_stride);
  CommitCopies();
  WaitCopies<1>();
  __syncthreads();
  uint32_t qf[D / 16][4];
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    LoadMatrices(qf[kk], smem + 2 * kTile + (warp * 16 + lane % 8 + (lane / 8) % 2 * 8) * kStride +
                             kk * 16 + lane / 16 * 8);
  }
  __syncthreads();

  const int64_t key_end = std::min<int64_t>(len, q0 + kQueries);
  const int tiles_k = static_cast<int>((key_end + kKeys - 1) / kKeys);
  float o[D / 8][4] = {};
  float m[2] = {-INFINITY, -INFINITY};  // running row maxima (scaled, base 2)
  float l[2] = {0.0f, 0.0f};            // this thread's part of the row sums
  constexpr float kLog2e = 1.4426950408889634f;
  for (int kt = kt_first; kt < tiles_k; ++kt) {
    const int64_t k0 = int64_t{kt} * kKeys;
    const int stage = (kt - kt_first) & 1;
    const T* const ks = smem + stage * 2 * kTile;
    const T* const vs = ks + kTile;
    // Tile kt + 1 into the other stage (freed by the barrier that ended step kt − 1).
    if (kt + 1 < tiles_k) {
      T* const next = smem + (stage ^ 1) * 2 * kTile;
      CopyTileAsync<T, D, kKeys, kThreads, kStride>(next, kb, k0 + kKeys, len, kv_stride);
      CopyTileAsync<T, D, kKeys, kThreads, kStride>(next + kTile, vb, k0 + kKeys, len, kv_stride);
    }
    CommitCopies();
    WaitCopies<1>();  // tile kt has landed
    __syncthreads();
    // Rows and k0 are multiples of 16: an active warp's tile holds keys at or before its rows
    // (and, with a window, inside the window of its first row). A row with every key of the tile
    // masked (the window) contributes nothing: its maximum stays −inf and its P is 0.
    const bool active = warp_valid && k0 <= row0 && (window <= 0 || k0 + kKeys > row0 - window + 1);
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
      const int keys = static_cast<int>(std::min<int64_t>(len - k0, kKeys));
      const bool masked = row_off < kKeys - 1 || keys < kKeys || window > 0;
      float mx[2] = {m[0], m[1]};
#pragma unroll
      for (int j = 0; j < kKeys / 8; ++j) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          float x = softcap > 0.0f ? softcap * tanhf(s[j][e] * scale / softcap) * kLog2e
                                   : s[j][e] * scale_log2;
          const int key = j * 8 + c2 + (e & 1);
          const int row = row_off + (e >> 1) * 8;
          if (masked && (key > row || key >= keys || (window > 0 && row - key >= window))) {
            x = -INFINITY;
          }
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
        corr[r] = Exp2(m[r] - base[r]);
        m[r] = mx[r];
        l[r] *= corr[r];
      }
#pragma unroll
      for (int j = 0; j < kKeys / 8; ++j) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          s[j][e] = Exp2(s[j][e] - base[e >> 1]);
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
        const uint32_t p[4] = {PackPair<T>(s[2 * kk][0], s[2 * kk][1]),
                               PackPair<T>(s[2 * kk][2], s[2 * kk][3]),
                               PackPair<T>(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                               PackPair<T>(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
        for (int j = 0; j < D / 16; ++j) {
          uint32_t b[4];
          LoadMatrices<true>(
              b, vs + (kk * 16 + lane % 8 + (lane / 8) % 2 * 8) * kStride + j * 16 + lane / 16 * 8);
          Mma<T>(o[2 * j], p, b[0], b[1]);
          Mma<T>(o[2 * j + 1], p, b[2], b[3]);
        }
      }
    }
    __syncthreads();  // every warp is done with this stage before it is refilled
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

// One launch's arguments.
struct AttentionArgs {
  const void *q, *k, *v;
  float* out;
  void* out_op;
  int64_t tokens, len, heads, kv_heads;
  AttentionOptions options;
  cudaStream_t stream;
};

template <int W, int K, int B>
struct Tiles {
  static constexpr int kWarps = W, kKeys = K, kMinBlocks = B;
};

// The compiled shapes per head_dim, default (the fastest measured) first.
using Tiles64 = std::tuple<Tiles<4, 64, 4>, Tiles<4, 64, 3>, Tiles<8, 64, 2>, Tiles<4, 32, 4>>;
using Tiles128 = std::tuple<Tiles<4, 32, 3>, Tiles<4, 32, 2>, Tiles<4, 32, 4>>;
// Phi-3-mini's 96: 64-key tiles would pass 48 KiB of static shared memory.
using Tiles96 = std::tuple<Tiles<4, 32, 3>, Tiles<4, 32, 2>>;
// Gemma's 256: 16-key tiles (the four K/V buffers stay under 48 KiB) and two warps (the query
// tile is staged through the second stage's 32 rows).
using Tiles256 = std::tuple<Tiles<2, 16, 1>>;

// Launches the kernel if `t` names these tiles.
template <typename T, int D, int kWarps, int kKeys, int kMinBlocks>
bool LaunchIfTiles(Tiles<kWarps, kKeys, kMinBlocks>, const AttentionTiles& t,
                   const AttentionArgs& a) {
  if (t.warps != kWarps || t.keys != kKeys || t.min_blocks != kMinBlocks) return false;
  constexpr int kQueries = kWarps * 16;
  const int64_t tiles = (a.len + kQueries - 1) / kQueries;
  const int64_t grid = a.tokens / a.len * tiles * a.heads;
  TensorCoreAttentionKernel<T, D, kWarps, kKeys, kMinBlocks>
      <<<static_cast<unsigned>(grid), kWarps * 32, 0, a.stream>>>(
          static_cast<const T*>(a.q), static_cast<const T*>(a.k), static_cast<const T*>(a.v), a.out,
          static_cast<T*>(a.out_op), a.len, tiles, static_cast<int>(a.heads),
          static_cast<int>(a.kv_heads), a.options.scale, a.options.scale_log2, a.options.softcap,
          a.options.window);
  return true;
}

template <typename T, int D, typename... S>
bool LaunchMatching(std::tuple<S...>, const AttentionTiles& t, const AttentionArgs& a) {
  return (LaunchIfTiles<T, D>(S{}, t, a) || ...);
}

template <typename T>
bool LaunchWithTiles(const AttentionTiles& t, int64_t head_dim, const AttentionArgs& a) {
  switch (head_dim) {
    case 64:
      return LaunchMatching<T, 64>(Tiles64{}, t, a);
    case 96:
      return LaunchMatching<T, 96>(Tiles96{}, t, a);
    case 128:
      return LaunchMatching<T, 128>(Tiles128{}, t, a);
    case 256:
      return LaunchMatching<T, 256>(Tiles256{}, t, a);
    default:
      return false;
  }
}

template <typename... S>
std::vector<AttentionTiles> ListOf(std::tuple<S...>) {
  return {AttentionTiles{S::kWarps, S::kKeys, S::kMinBlocks}...};
}

}  // namespace

std::vector<AttentionTiles> AttentionTileChoices(int64_t head_dim) {
  switch (head_dim) {
    case 64:
      return ListOf(Tiles64{});
    case 96:
      return ListOf(Tiles96{});
    case 128:
      return ListOf(Tiles128{});
    case 256:
      return ListOf(Tiles256{});
    default:
      return {};
  }
}

bool AttentionSupportsHeadDim(int64_t head_dim) { return !AttentionTileChoices(head_dim).empty(); }

bool CausalAttentionWithTiles(const AttentionTiles& tiles, const void* q, const void* k,
                              const void* v, float* out, void* out_op, int64_t tokens, int64_t len,
                              int64_t heads, int64_t kv_heads, int64_t head_dim, DType md,
                              const AttentionOptions& options, cudaStream_t stream) {
  if (tokens <= 0 || len <= 0) return true;
  const AttentionArgs a{q, k, v, out, out_op, tokens, len, heads, kv_heads, options, stream};
  switch (md) {
    case DType::kF16:
      return LaunchWithTiles<__half>(tiles, head_dim, a);
    case DType::kBF16:
      return LaunchWithTiles<__nv_bfloat16>(tiles, head_dim, a);
    default:
      return false;
  }
}

bool CausalAttention(const void* q, const void* k, const void* v, float* out, void* out_op,
                     int64_t tokens, int64_t len, int64_t heads, int64_t kv_heads, int64_t head_dim,
                     DType md, const AttentionOptions& options, cudaStream_t stream) {
  if (md == DType::kF32) {
    return out_op == nullptr &&
           CausalAttentionF32(static_cast<const float*>(q), static_cast<const float*>(k),
                              static_cast<const float*>(v), out, tokens, len, heads, kv_heads,
                              head_dim, options, stream);
  }
  const std::vector<AttentionTiles> choices = AttentionTileChoices(head_dim);
  return !choices.empty() &&
         CausalAttentionWithTiles(choices.front(), q, k, v, out, out_op, tokens, len, heads,
                                  kv_heads, head_dim, md, options, stream);
}

}  // namespace quantd::engine::cuda
