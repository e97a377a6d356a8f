// Device-side helpers shared by the CUDA backend's kernels: rounding to the model dtype exactly as
// core/dtype.h does on the host (round to nearest even, overflow to ±inf), std::clamp's semantics,
// and warp / block reductions.
#ifndef QUANTD_ENGINE_CUDA_DEVICE_MATH_CUH_
#define QUANTD_ENGINE_CUDA_DEVICE_MATH_CUH_

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "core/dtype.h"

namespace quantd::engine::cuda {

__device__ __forceinline__ float RoundMd(float v, DType md) {
  switch (md) {
    case DType::kF16:
      return __half2float(__float2half_rn(v));
    case DType::kBF16:
      return __bfloat162float(__float2bfloat16_rn(v));
    default:
      return v;
  }
}

// std::clamp(v, lo, hi): NaN passes through, as on the host.
__device__ __forceinline__ float ClampStd(float v, float lo, float hi) {
  return v < lo ? lo : (hi < v ? hi : v);
}

// std::max(a, b) = (a < b) ? b : a.
__device__ __forceinline__ float MaxStd(float a, float b) { return a < b ? b : a; }

__device__ __forceinline__ float MaxFiniteMd(DType md) {
  switch (md) {
    case DType::kF16:
      return 65504.0f;
    case DType::kBF16:
      return 3.38953139e38f;  // bf16 0x7f7f
    default:
      return 3.40282347e38f;
  }
}

// Element i of a float32 or 16-bit array.
__device__ __forceinline__ float LoadAs(const void* p, int64_t i, DType t) {
  switch (t) {
    case DType::kF16:
      return __half2float(static_cast<const __half*>(p)[i]);
    case DType::kBF16:
      return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
    default:
      return static_cast<const float*>(p)[i];
  }
}

// Stores v (already representable in md) into a GEMM operand buffer of dtype md.
__device__ __forceinline__ void StoreOperand(void* dst, size_t i, float v, DType md) {
  switch (md) {
    case DType::kF16:
      static_cast<__half*>(dst)[i] = __float2half_rn(v);
      break;
    case DType::kBF16:
      static_cast<__nv_bfloat16*>(dst)[i] = __float2bfloat16_rn(v);
      break;
    default:
      static_cast<float*>(dst)[i] = v;
  }
}

template <typename T>
__device__ __forceinline__ T WarpSum(T v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float WarpMax(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ __forceinline__ float WarpMin(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fminf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, ≤ 1024); every thread gets the result.
template <typename T>
__device__ T BlockSum(T v, T* scratch /* [32] */) {
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  v = WarpSum(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  const int warps = blockDim.x >> 5;
  T r = lane < warps ? scratch[lane] : T(0);
  r = WarpSum(r);
  return r;
}

__device__ __forceinline__ float BlockMax(float v, float* scratch) {
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  v = WarpMax(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  const int warps = blockDim.x >> 5;
  float r = lane < warps ? scratch[lane] : -INFINITY;
  return WarpMax(r);
}

__device__ __forceinline__ float BlockMin(float v, float* scratch) {
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  v = WarpMin(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  const int warps = blockDim.x >> 5;
  float r = lane < warps ? scratch[lane] : INFINITY;
  return WarpMin(r);
}

// AutoAWQ's group quantizer parameters from the group's min and max (awq/pseudo_quantize.cc).
struct GroupParams {
  float scale;
  float zero;
};
__device__ __forceinline__ GroupParams QuantParams(float mx, float mn, DType md) {
  const float range = MaxStd(RoundMd(mx - mn, md), RoundMd(1e-5f, md));
  const float scale = RoundMd(__fmul_rn(range, 1.0f / 15.0f), md);
  const float zero = ClampStd(-rintf(RoundMd(mn / scale, md)), 0.0f, 15.0f);
  return {scale, zero};
}
// Symmetric (zero_point=False): scale = md(max(amax, 1e-5) · (1/7)); codes q ∈ [−8, 7] stored as
// q + 8, i.e. the asymmetric formulas below with zero 8 (awq/pseudo_quantize.cc).
__device__ __forceinline__ GroupParams SymmetricParams(float amax, DType md) {
  const float scale = RoundMd(__fmul_rn(MaxStd(amax, RoundMd(1e-5f, md)), 1.0f / 7.0f), md);
  return {scale, 8.0f};
}
__device__ __forceinline__ GroupParams GroupParamsOf(float mx, float mn, bool symmetric, DType md) {
  return symmetric ? SymmetricParams(fmaxf(fabsf(mx), fabsf(mn)), md) : QuantParams(mx, mn, md);
}
// The code of one value and its dequantized value.
__device__ __forceinline__ float QuantCode(float v, GroupParams p, DType md) {
  return ClampStd(RoundMd(rintf(RoundMd(v / p.scale, md)) + p.zero, md), 0.0f, 15.0f);
}
__device__ __forceinline__ float Dequant(float q, GroupParams p, DType md) {
  return RoundMd(__fmul_rn(q - p.zero, p.scale), md);
}

}  // namespace quantd::engine::cuda

#endif  // QUANTD_ENGINE_CUDA_DEVICE_MATH_CUH_
