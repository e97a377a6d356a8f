// Elementwise, normalisation, RoPE and reduction kernels of the decoder layer forward and of the
// AWQ statistics (see kernels.h). Each mirrors one host function of backend/cpu/layer_ops.cc or
// awq/scale_search.cc, rounding to md at the same points.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>

#include "cuda/device_math.cuh"
#include "cuda/kernels.h"

namespace quantd::engine::cuda {
namespace {

constexpr int kThreads = 256;

unsigned Blocks(int64_t n, int threads = kThreads) {
  const int64_t b = (n + threads - 1) / threads;
  return static_cast<unsigned>(std::min<int64_t>(b, 1 << 20));
}

#define GRID_STRIDE(i, n)                                                   \
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < (n); \
       i += int64_t{gridDim.x} * blockDim.x)

__global__ void RmsNormKernel(const float* x, const float* w, float* y, int64_t cols, float eps,
                              DType md, bool one_plus_weight) {
  __shared__ float scratch[32];
  const float* xr = x + blockIdx.x * cols;
  float* yr = y + blockIdx.x * cols;
  float sum = 0.0f;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) sum += __fmul_rn(xr[j], xr[j]);
  sum = BlockSum(sum, scratch);
  const float inv = 1.0f / sqrtf(sum / static_cast<float>(cols) + eps);
  if (one_plus_weight) {  // Gemma: (x · inv) · (1 + w) in float32, one rounding
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
      yr[j] = RoundMd(__fmul_rn(__fmul_rn(xr[j], inv), __fadd_rn(1.0f, w[j])), md);
    }
    return;
  }
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
    yr[j] = RoundMd(__fmul_rn(w[j], RoundMd(__fmul_rn(xr[j], inv), md)), md);
  }
}

// Into y_out (float32, may be y) or y_op (dtype md), whichever is not null.
__global__ void BiasRoundKernel(const float* y, const float* bias, int64_t n, int64_t cols,
                                DType md, float* y_out, void* y_op) {
  GRID_STRIDE(i, n) {
    const float b = bias != nullptr ? bias[i % cols] : 0.0f;
    const float r = RoundMd(y[i] + b, md);
    if (y_op != nullptr) {
      StoreOperand(y_op, static_cast<size_t>(i), r, md);
    } else {
      y_out[i] = r;
    }
  }
}

// The rotate-half pair (x[i], x[i + half]) at one position, as backend/cpu/layer_ops.cc rounds it:
// each product to md, then the sum.
__device__ __forceinline__ float2 RotatePair(float a, float b, float c_lo, float s_lo, float c_hi,
                                             float s_hi, DType md) {
  return {RoundMd(RoundMd(__fmul_rn(a, c_lo), md) + RoundMd(__fmul_rn(-b, s_lo), md), md),
          RoundMd(RoundMd(__fmul_rn(b, c_hi), md) + RoundMd(__fmul_rn(a, s_hi), md), md)};
}

// x_op null: in place; else into x_op (dtype md).
__global__ void RopeKernel(float* x, const float* cos, const float* sin, int64_t n, int64_t heads,
                           int64_t d, int64_t len, DType md, void* x_op) {
  const int64_t half = d / 2;
  // One thread per (token, head, i < half): updates elements i and i + half together.
  GRID_STRIDE(idx, n) {
    const int64_t i = idx % half;
    const int64_t th = idx / half;  // token · heads + head
    const int64_t t = th / heads;
    const int64_t pos = t % len;
    float* v = x != nullptr ? x + th * d : nullptr;
    const float* c = cos + pos * d;
    const float* s = sin + pos * d;
    const float a = v != nullptr ? v[i] : LoadAs(x_op, th * d + i, md);
    const float b = v != nullptr ? v[i + half] : LoadAs(x_op, th * d + i + half, md);
    const float2 r = RotatePair(a, b, c[i], s[i], c[i + half], s[i + half], md);
    if (x_op != nullptr) {
      StoreOperand(x_op, static_cast<size_t>(th * d + i), r.x, md);
      StoreOperand(x_op, static_cast<size_t>(th * d + i + half), r.y, md);
    } else {
      v[i] = r.x;
      v[i + half] = r.y;
    }
  }
}

// Eight float32 table entries from a 32-byte aligned address.
__device__ __forceinline__ void LoadEight(const float* p, float (&out)[8]) {
  const float4 lo = reinterpret_cast<const float4*>(p)[0];
  const float4 hi = reinterpret_cast<const float4*>(p)[1];
  out[0] = lo.x, out[1] = lo.y, out[2] = lo.z, out[3] = lo.w;
  out[4] = hi.x, out[5] = hi.y, out[6] = hi.z, out[7] = hi.w;
}

// RoPE in place on the md q and k of every token in one launch (RopeKernel's arithmetic): a thread
// owns eight pairs (i..i+7, i+half..i+half+7) of one head row, read and written as two 16-byte
// vectors; the threads of a token are adjacent, so its cos/sin row is read once into L1. Needs
// head_dim % 16 == 0 and 16-byte aligned q/k.
template <typename T>
__global__ void RopeQkOperandKernel(T* q, T* k, const float* cos, const float* sin, int64_t tokens,
                                    int heads, int kv_heads, int d, int64_t len, DType md) {
  const int half = d / 2;
  const int chunks = half / 8;
  const int per_token = (heads + kv_heads) * chunks;
  GRID_STRIDE(idx, tokens * per_token) {
    const int64_t t = idx / per_token;
    const int r = static_cast<int>(idx - t * per_token);
    const int head = r / chunks;
    const int i = (r - head * chunks) * 8;
    T* row = head < heads ? q + (t * heads + head) * d : k + (t * kv_heads + head - heads) * d;
    const int64_t pos = t % len;
    float c_lo[8], s_lo[8], c_hi[8], s_hi[8];
    LoadEight(cos + pos * d + i, c_lo);
    LoadEight(sin + pos * d + i, s_lo);
    LoadEight(cos + pos * d + i + half, c_hi);
    LoadEight(sin + pos * d + i + half, s_hi);
    uint4 av = *reinterpret_cast<const uint4*>(row + i);
    uint4 bv = *reinterpret_cast<const uint4*>(row + i + half);
    T* a8 = reinterpret_cast<T*>(&av);
    T* b8 = reinterpret_cast<T*>(&bv);
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const float2 v = RotatePair(static_cast<float>(a8[j]), static_cast<float>(b8[j]), c_lo[j],
                                  s_lo[j], c_hi[j], s_hi[j], md);
      a8[j] = static_cast<T>(v.x);  // exact: v is md-representable
      b8[j] = static_cast<T>(v.y);
    }
    *reinterpret_cast<uint4*>(row + i) = av;
    *reinterpret_cast<uint4*>(row + i + half) = bv;
  }
}

// The gating activation in float32, as backend/cpu/layer_ops.cc's GatedActivation: silu, or
// PyTorch's tanh-approximated GELU 0.5 · g · (1 + tanh(√(2/π) · (g + 0.044715 · g³))) with
// explicit roundings (no contraction into FMAs the host does not do).
__device__ __forceinline__ float Activate(float g, bool gelu_tanh) {
  if (!gelu_tanh) return g / (1.0f + expf(-g));
  constexpr float kBeta = static_cast<float>(1.4142135623730951 * 1.1283791670955126 * 0.5);
  const float cube = __fmul_rn(__fmul_rn(g, g), g);
  const float inner = __fmul_rn(kBeta, __fadd_rn(g, __fmul_rn(0.044715f, cube)));
  return __fmul_rn(__fmul_rn(0.5f, g), __fadd_rn(1.0f, tanhf(inner)));
}

__global__ void GatedMulKernel(const float* gate, const float* up, float* out, int64_t n, DType md,
                               bool gelu_tanh) {
  GRID_STRIDE(i, n) {
    const float act = RoundMd(Activate(gate[i], gelu_tanh), md);
    out[i] = RoundMd(__fmul_rn(act, up[i]), md);
  }
}

template <typename T>
__device__ __forceinline__ T GatedMulOne(T gate, T up, DType md, bool gelu_tanh) {
  const float a = RoundMd(Activate(static_cast<float>(gate), gelu_tanh), md);
  return static_cast<T>(__fmul_rn(a, static_cast<float>(up)));
}

// Eight 16-bit elements per thread through 16-byte loads and stores: the kernel is bound by
// memory bandwidth at the MLP's [tokens, intermediate] size. `vec` elements go this way, the
// tail (and misaligned buffers) one by one.
template <typename T>
__global__ void GatedMulOperandKernel(const T* gate, const T* up, T* act, int64_t vec, int64_t n,
                                      DType md, bool gelu_tanh) {
  GRID_STRIDE(v, vec) {
    const uint4 gv = reinterpret_cast<const uint4*>(gate)[v];
    const uint4 uv = reinterpret_cast<const uint4*>(up)[v];
    uint4 ov;
    const T* g8 = reinterpret_cast<const T*>(&gv);
    const T* u8 = reinterpret_cast<const T*>(&uv);
    T* o8 = reinterpret_cast<T*>(&ov);
#pragma unroll
    for (int j = 0; j < 8; ++j) o8[j] = GatedMulOne(g8[j], u8[j], md, gelu_tanh);
    reinterpret_cast<uint4*>(act)[v] = ov;
  }
  GRID_STRIDE(i, n - vec * 8) {
    const int64_t k = vec * 8 + i;
    act[k] = GatedMulOne(gate[k], up[k], md, gelu_tanh);
  }
}

__global__ void SoftCapKernel(float* x, int64_t n, float cap, DType md) {
  GRID_STRIDE(i, n) {
    x[i] = RoundMd(__fmul_rn(RoundMd(tanhf(RoundMd(x[i] / cap, md)), md), cap), md);
  }
}

__global__ void AddRoundKernel(float* a, const float* b, int64_t n, DType md) {
  GRID_STRIDE(i, n) { a[i] = RoundMd(a[i] + b[i], md); }
}

__global__ void ToOperandKernel(const float* src, void* dst, int64_t n, DType md) {
  GRID_STRIDE(i, n) { StoreOperand(dst, static_cast<size_t>(i), src[i], md); }
}

template <typename T>
__device__ __forceinline__ double SquaredDiff(T ref, T out, float hi, DType md) {
  const float a = ClampStd(static_cast<float>(ref), -hi, hi);
  const float b = ClampStd(static_cast<float>(out), -hi, hi);
  const double d = RoundMd(a - b, md);
  return d * d;  // exact in float64: d has at most 24 significant bits
}

// Σ over 16-byte vectors of ref and out (`vec` of them, kPer elements each), two per thread and
// iteration so that four loads are in flight, then the tail (and misaligned buffers) one by one;
// one float64 atomic per block.
template <typename T>
__global__ void SquaredErrorKernel(const T* __restrict__ ref, const T* __restrict__ out,
                                   int64_t vec, int64_t n, DType md, double* acc) {
  constexpr int kPer = 16 / static_cast<int>(sizeof(T));
  __shared__ double scratch[32];
  const float hi = MaxFiniteMd(md);
  const uint4* rv = reinterpret_cast<const uint4*>(ref);
  const uint4* ov = reinterpret_cast<const uint4*>(out);
  const int64_t stride = int64_t{gridDim.x} * blockDim.x;
  double sum = 0.0;
  int64_t v = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  for (; v + stride < vec; v += 2 * stride) {
    const uint4 r[2] = {rv[v], rv[v + stride]};
    const uint4 o[2] = {ov[v], ov[v + stride]};
#pragma unroll
    for (int u = 0; u < 2; ++u) {
      const T* r8 = reinterpret_cast<const T*>(&r[u]);
      const T* o8 = reinterpret_cast<const T*>(&o[u]);
#pragma unroll
      for (int j = 0; j < kPer; ++j) sum += SquaredDiff(r8[j], o8[j], hi, md);
    }
  }
  if (v < vec) {
    const uint4 r = rv[v], o = ov[v];
    const T* r8 = reinterpret_cast<const T*>(&r);
    const T* o8 = reinterpret_cast<const T*>(&o);
#pragma unroll
    for (int j = 0; j < kPer; ++j) sum += SquaredDiff(r8[j], o8[j], hi, md);
  }
  GRID_STRIDE(i, n - vec * kPer) {
    const int64_t e = vec * kPer + i;
    sum += SquaredDiff(ref[e], out[e], hi, md);
  }
  sum = BlockSum(sum, scratch);
  if (threadIdx.x == 0) atomicAdd(acc, sum);
}

__global__ void DotKernel(const float* a_hi, const float* a_lo, const float* b, int64_t n,
                          double* acc) {
  __shared__ double scratch[32];
  double sum = 0.0;
  GRID_STRIDE(i, n) {
    const float a = a_lo != nullptr ? a_hi[i] + a_lo[i] : a_hi[i];
    sum += static_cast<double>(a) * b[i];
  }
  sum = BlockSum(sum, scratch);
  if (threadIdx.x == 0) atomicAdd(acc, sum);
}

__global__ void SplitTf32Kernel(float* x, float* lo, int64_t n) {
  GRID_STRIDE(i, n) {
    const float v = x[i];
    const float hi = __uint_as_float(__float_as_uint(v) & 0xffffe000u);
    x[i] = hi;
    lo[i] = v - hi;  // exact: the cleared low bits
  }
}

constexpr int64_t kRowsPerChunk = 256;

__global__ void ColumnAbsSumKernel(const void* x, DType x_type, int64_t rows, int64_t cols,
                                   double* sums) {
  const int64_t c = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (c >= cols) return;
  const int64_t r0 = blockIdx.y * kRowsPerChunk;
  const int64_t r1 = std::min(rows, r0 + kRowsPerChunk);
  double s = 0.0;
  for (int64_t r = r0; r < r1; ++r) s += fabsf(LoadAs(x, r * cols + c, x_type));
  atomicAdd(sums + c, s);
}

// One warp per (row, group): denom = md(max|w| + 1e-6).
__global__ void GroupDenomKernel(const float* w, int64_t rows, int64_t cols, int64_t group,
                                 DType md, float* denom) {
  const int64_t groups = cols / group;
  const int64_t warp = (blockIdx.x * int64_t{blockDim.x} + threadIdx.x) / 32;
  const int lane = threadIdx.x & 31;
  if (warp >= rows * groups) return;
  const float* src = w + (warp / groups) * cols + (warp % groups) * group;
  float amax = 0.0f;
  for (int64_t j = lane; j < group; j += 32) amax = fmaxf(amax, fabsf(src[j]));
  amax = WarpMax(amax);
  if (lane == 0) denom[warp] = RoundMd(amax + 1e-6f, md);
}

__global__ void NormalizedSumKernel(const float* w, const float* denom, int64_t rows, int64_t cols,
                                    int64_t group, DType md, double* sums) {
  const int64_t c = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (c >= cols) return;
  const int64_t groups = cols / group;
  const int64_t r0 = blockIdx.y * kRowsPerChunk;
  const int64_t r1 = std::min(rows, r0 + kRowsPerChunk);
  double s = 0.0;
  for (int64_t r = r0; r < r1; ++r) {
    s += RoundMd(fabsf(w[r * cols + c]) / denom[r * groups + c / group], md);
  }
  atomicAdd(sums + c, s);
}

__global__ void FinishMeanKernel(const double* sums, int64_t cols, float inv, DType md,
                                 float* out) {
  GRID_STRIDE(c, cols) { out[c] = RoundMd(__fmul_rn(static_cast<float>(sums[c]), inv), md); }
}

// One block per row: logsumexp in float64 of exp(z − max), as the CPU reference.
__global__ void NllKernel(const float* logits, const int32_t* targets, int64_t vocab, double* acc) {
  __shared__ float fscratch[32];
  __shared__ double dscratch[32];
  const float* z = logits + blockIdx.x * vocab;
  float mx = -INFINITY;
  for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x) mx = fmaxf(mx, z[j]);
  mx = BlockMax(mx, fscratch);
  double sum = 0.0;
  for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x)
    sum += exp(static_cast<double>(z[j] - mx));
  sum = BlockSum(sum, dscratch);
  if (threadIdx.x == 0) atomicAdd(acc, log(sum) + mx - z[targets[blockIdx.x]]);
}

}  // namespace

void RmsNorm(const float* x, const float* w, float* y, int64_t rows, int64_t cols, float eps,
             DType md, bool one_plus_weight, cudaStream_t stream) {
  const int threads = cols >= 1024 ? 1024 : (cols >= 256 ? 256 : 64);
  RmsNormKernel<<<static_cast<unsigned>(rows), threads, 0, stream>>>(x, w, y, cols, eps, md,
                                                                     one_plus_weight);
}

void BiasRound(float* y, const float* bias, int64_t rows, int64_t cols, DType md,
               cudaStream_t stream) {
  if (bias == nullptr && md == DType::kF32) return;
  BiasRoundKernel<<<Blocks(rows * cols), kThreads, 0, stream>>>(y, bias, rows * cols, cols, md, y,
                                                                nullptr);
}

void BiasRoundOperand(const float* y, const float* bias, int64_t rows, int64_t cols, DType md,
                      void* y_op, cudaStream_t stream) {
  BiasRoundKernel<<<Blocks(rows * cols), kThreads, 0, stream>>>(y, bias, rows * cols, cols, md,
                                                                nullptr, y_op);
}

void Rope(float* x, const float* cos, const float* sin, int64_t tokens, int64_t heads,
          int64_t head_dim, int64_t len, DType md, void* x_op, cudaStream_t stream) {
  const int64_t n = tokens * heads * (head_dim / 2);
  RopeKernel<<<Blocks(n), kThreads, 0, stream>>>(x, cos, sin, n, heads, head_dim, len, md, x_op);
}

template <typename T>
void LaunchRopeQkOperand(void* q, void* k, const float* cos, const float* sin, int64_t tokens,
                         int64_t heads, int64_t kv_heads, int64_t head_dim, int64_t len, DType md,
                         cudaStream_t stream) {
  const int64_t n = tokens * (heads + kv_heads) * (head_dim / 16);
  RopeQkOperandKernel<T><<<Blocks(n), kThreads, 0, stream>>>(
      static_cast<T*>(q), static_cast<T*>(k), cos, sin, tokens, static_cast<int>(heads),
      static_cast<int>(kv_heads), static_cast<int>(head_dim), len, md);
}

void RopeQkOperand(void* q, void* k, const float* cos, const float* sin, int64_t tokens,
                   int64_t heads, int64_t kv_heads, int64_t head_dim, int64_t len, DType md,
                   cudaStream_t stream) {
  const bool vectorised = md != DType::kF32 && head_dim % 16 == 0 &&
                          (reinterpret_cast<uintptr_t>(q) | reinterpret_cast<uintptr_t>(k) |
                           reinterpret_cast<uintptr_t>(cos) | reinterpret_cast<uintptr_t>(sin)) %
                                  16 ==
                              0;
  if (!vectorised) {
    Rope(nullptr, cos, sin, tokens, heads, head_dim, len, md, q, stream);
    Rope(nullptr, cos, sin, tokens, kv_heads, head_dim, len, md, k, stream);
  } else if (md == DType::kF16) {
    LaunchRopeQkOperand<__half>(q, k, cos, sin, tokens, heads, kv_heads, head_dim, len, md, stream);
  } else {
    LaunchRopeQkOperand<__nv_bfloat16>(q, k, cos, sin, tokens, heads, kv_heads, head_dim, len, md,
                                       stream);
  }
}

void GatedMul(const float* gate, const float* up, float* out, int64_t n, bool gelu_tanh, DType md,
              cudaStream_t stream) {
  GatedMulKernel<<<Blocks(n), kThreads, 0, stream>>>(gate, up, out, n, md, gelu_tanh);
}

template <typename T>
void LaunchGatedMulOperand(const void* gate, const void* up, void* act, int64_t n, bool gelu_tanh,
                           DType md, cudaStream_t stream) {
  const bool aligned = ((reinterpret_cast<uintptr_t>(gate) | reinterpret_cast<uintptr_t>(up) |
                         reinterpret_cast<uintptr_t>(act)) %
                        16) == 0;
  const int64_t vec = aligned ? n / 8 : 0;
  GatedMulOperandKernel<T><<<Blocks(std::max<int64_t>(vec, n - vec * 8)), kThreads, 0, stream>>>(
      static_cast<const T*>(gate), static_cast<const T*>(up), static_cast<T*>(act), vec, n, md,
      gelu_tanh);
}

void GatedMulOperand(const void* gate, const void* up, void* act, int64_t n, bool gelu_tanh,
                     DType md, cudaStream_t stream) {
  if (md == DType::kF16) {
    LaunchGatedMulOperand<__half>(gate, up, act, n, gelu_tanh, md, stream);
  } else {
    LaunchGatedMulOperand<__nv_bfloat16>(gate, up, act, n, gelu_tanh, md, stream);
  }
}

void SoftCap(float* x, int64_t n, float cap, DType md, cudaStream_t stream) {
  SoftCapKernel<<<Blocks(n), kThreads, 0, stream>>>(x, n, cap, md);
}

void AddRound(float* a, const float* b, int64_t n, DType md, cudaStream_t stream) {
  AddRoundKernel<<<Blocks(n), kThreads, 0, stream>>>(a, b, n, md);
}

void ToOperand(const float* src, void* dst, int64_t n, DType md, cudaStream_t stream) {
  ToOperandKernel<<<Blocks(n), kThreads, 0, stream>>>(src, dst, n, md);
}

template <typename T>
void LaunchSquaredError(const void* ref, const void* out, int64_t n, DType md, double* acc,
                        cudaStream_t stream) {
  constexpr int64_t kPer = 16 / sizeof(T);
  const bool aligned =
      ((reinterpret_cast<uintptr_t>(ref) | reinterpret_cast<uintptr_t>(out)) % 16) == 0;
  const int64_t vec = aligned ? n / kPer : 0;
  const int64_t work = std::max<int64_t>((vec + 1) / 2, n - vec * kPer);
  SquaredErrorKernel<T><<<std::min<unsigned>(Blocks(work), 2048), kThreads, 0, stream>>>(
      static_cast<const T*>(ref), static_cast<const T*>(out), vec, n, md, acc);
}

void AddSquaredError(const void* ref, const void* out, DType type, int64_t n, DType md, double* acc,
                     cudaStream_t stream) {
  switch (type) {
    case DType::kF16:
      return LaunchSquaredError<__half>(ref, out, n, md, acc, stream);
    case DType::kBF16:
      return LaunchSquaredError<__nv_bfloat16>(ref, out, n, md, acc, stream);
    default:
      return LaunchSquaredError<float>(ref, out, n, md, acc, stream);
  }
}

void AddDot(const float* a_hi, const float* a_lo, const float* b, int64_t n, double* acc,
            cudaStream_t stream) {
  DotKernel<<<std::min<unsigned>(Blocks(n), 2048), kThreads, 0, stream>>>(a_hi, a_lo, b, n, acc);
}

void SplitTf32(float* x, float* lo, int64_t n, cudaStream_t stream) {
  SplitTf32Kernel<<<Blocks(n), kThreads, 0, stream>>>(x, lo, n);
}

void AddColumnAbsSums(const void* x, DType x_type, int64_t rows, int64_t cols, double* sums,
                      cudaStream_t stream) {
  const dim3 grid(Blocks(cols), static_cast<unsigned>((rows + kRowsPerChunk - 1) / kRowsPerChunk));
  ColumnAbsSumKernel<<<grid, kThreads, 0, stream>>>(x, x_type, rows, cols, sums);
}

void AddNormalizedWeightSums(const float* w, int64_t rows, int64_t cols, int64_t group, DType md,
                             float* denom, double* sums, cudaStream_t stream) {
  const int64_t warps = rows * (cols / group);
  GroupDenomKernel<<<Blocks(warps * 32), kThreads, 0, stream>>>(w, rows, cols, group, md, denom);
  const dim3 grid(Blocks(cols), static_cast<unsigned>((rows + kRowsPerChunk - 1) / kRowsPerChunk));
  NormalizedSumKernel<<<grid, kThreads, 0, stream>>>(w, denom, rows, cols, group, md, sums);
}

void FinishMean(const double* sums, int64_t cols, int64_t count, DType md, float* out,
                cudaStream_t stream) {
  FinishMeanKernel<<<Blocks(cols), kThreads, 0, stream>>>(
      sums, cols, 1.0f / static_cast<float>(count), md, out);
}

void AddNll(const float* logits, const int32_t* targets, int64_t rows, int64_t vocab, double* acc,
            cudaStream_t stream) {
  NllKernel<<<static_cast<unsigned>(rows), 1024, 0, stream>>>(logits, targets, vocab, acc);
}

}  // namespace quantd::engine::cuda
