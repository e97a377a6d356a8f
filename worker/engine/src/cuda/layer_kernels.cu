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
                              DType md) {
  __shared__ float scratch[32];
  const float* xr = x + blockIdx.x * cols;
  float* yr = y + blockIdx.x * cols;
  float sum = 0.0f;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) sum += __fmul_rn(xr[j], xr[j]);
  sum = BlockSum(sum, scratch);
  const float inv = 1.0f / sqrtf(sum / static_cast<float>(cols) + eps);
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
    const float lo =
        RoundMd(RoundMd(__fmul_rn(a, c[i]), md) + RoundMd(__fmul_rn(-b, s[i]), md), md);
    const float hi = RoundMd(
        RoundMd(__fmul_rn(b, c[i + half]), md) + RoundMd(__fmul_rn(a, s[i + half]), md), md);
    if (x_op != nullptr) {
      StoreOperand(x_op, static_cast<size_t>(th * d + i), lo, md);
      StoreOperand(x_op, static_cast<size_t>(th * d + i + half), hi, md);
    } else {
      v[i] = lo;
      v[i + half] = hi;
    }
  }
}

__global__ void SiluMulKernel(const float* gate, const float* up, float* out, int64_t n, DType md) {
  GRID_STRIDE(i, n) {
    const float g = gate[i];
    const float act = RoundMd(g / (1.0f + expf(-g)), md);
    out[i] = RoundMd(__fmul_rn(act, up[i]), md);
  }
}

template <typename T>
__device__ __forceinline__ T SiluMulOne(T gate, T up, DType md) {
  const float g = static_cast<float>(gate);
  const float a = RoundMd(g / (1.0f + expf(-g)), md);
  return static_cast<T>(__fmul_rn(a, static_cast<float>(up)));
}

// Eight 16-bit elements per thread through 16-byte loads and stores: the kernel is bound by
// memory bandwidth at the MLP's [tokens, intermediate] size. `vec` elements go this way, the
// tail (and misaligned buffers) one by one.
template <typename T>
__global__ void SiluMulOperandKernel(const T* gate, const T* up, T* act, int64_t vec, int64_t n,
                                     DType md) {
  GRID_STRIDE(v, vec) {
    const uint4 gv = reinterpret_cast<const uint4*>(gate)[v];
    const uint4 uv = reinterpret_cast<const uint4*>(up)[v];
    uint4 ov;
    const T* g8 = reinterpret_cast<const T*>(&gv);
    const T* u8 = reinterpret_cast<const T*>(&uv);
    T* o8 = reinterpret_cast<T*>(&ov);
#pragma unroll
    for (int j = 0; j < 8; ++j) o8[j] = SiluMulOne(g8[j], u8[j], md);
    reinterpret_cast<uint4*>(act)[v] = ov;
  }
  GRID_STRIDE(i, n - vec * 8) {
    const int64_t k = vec * 8 + i;
    act[k] = SiluMulOne(gate[k], up[k], md);
  }
}

__global__ void AddRoundKernel(float* a, const float* b, int64_t n, DType md) {
  GRID_STRIDE(i, n) { a[i] = RoundMd(a[i] + b[i], md); }
}

__global__ void ToOperandKernel(const float* src, void* dst, int64_t n, DType md) {
  GRID_STRIDE(i, n) { StoreOperand(dst, static_cast<size_t>(i), src[i], md); }
}

template <typename T>
__global__ void SquaredErrorKernel(const T* ref, const T* out, int64_t n, DType md, double* acc) {
  __shared__ double scratch[32];
  const float hi = MaxFiniteMd(md);
  double sum = 0.0;
  GRID_STRIDE(i, n) {
    const float a = ClampStd(static_cast<float>(ref[i]), -hi, hi);
    const float b = ClampStd(static_cast<float>(out[i]), -hi, hi);
    const double d = RoundMd(a - b, md);
    sum += d * d;
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
             DType md, cudaStream_t stream) {
  const int threads = cols >= 1024 ? 1024 : (cols >= 256 ? 256 : 64);
  RmsNormKernel<<<static_cast<unsigned>(rows), threads, 0, stream>>>(x, w, y, cols, eps, md);
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

void SiluMul(const float* gate, const float* up, float* out, int64_t n, DType md,
             cudaStream_t stream) {
  SiluMulKernel<<<Blocks(n), kThreads, 0, stream>>>(gate, up, out, n, md);
}

template <typename T>
void LaunchSiluMulOperand(const void* gate, const void* up, void* act, int64_t n, DType md,
                          cudaStream_t stream) {
  const bool aligned = ((reinterpret_cast<uintptr_t>(gate) | reinterpret_cast<uintptr_t>(up) |
                         reinterpret_cast<uintptr_t>(act)) %
                        16) == 0;
  const int64_t vec = aligned ? n / 8 : 0;
  SiluMulOperandKernel<T><<<Blocks(std::max<int64_t>(vec, n - vec * 8)), kThreads, 0, stream>>>(
      static_cast<const T*>(gate), static_cast<const T*>(up), static_cast<T*>(act), vec, n, md);
}

void SiluMulOperand(const void* gate, const void* up, void* act, int64_t n, DType md,
                    cudaStream_t stream) {
  if (md == DType::kF16) {
    LaunchSiluMulOperand<__half>(gate, up, act, n, md, stream);
  } else {
    LaunchSiluMulOperand<__nv_bfloat16>(gate, up, act, n, md, stream);
  }
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
  SquaredErrorKernel<T><<<std::min<unsigned>(Blocks(n), 2048), kThreads, 0, stream>>>(
      static_cast<const T*>(ref), static_cast<const T*>(out), n, md, acc);
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
