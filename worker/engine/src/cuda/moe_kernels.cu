#include <algorithm>
#include <cstdint>

#include "cuda/device_math.cuh"
#include "cuda/moe_kernels.h"

namespace quantd::engine::cuda {
namespace {

constexpr int kThreads = 256;

unsigned Blocks(int64_t n) {
  return static_cast<unsigned>(std::min<int64_t>((n + kThreads - 1) / kThreads, 1 << 20));
}

// One thread per unit of `Unit` bytes; rows are whole units.
template <typename Unit>
__global__ void GatherRowsByIndexKernel(const Unit* src, int64_t row_units, const int32_t* index,
                                        int64_t n, Unit* dst) {
  const int64_t total = n * row_units;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total;
       i += int64_t{blockDim.x} * gridDim.x) {
    const int64_t r = i / row_units;
    dst[i] = src[int64_t{index[r]} * row_units + i % row_units];
  }
}

__global__ void ScatterAddWeightedKernel(const float* out, const float* weight,
                                         const int32_t* token, int64_t n, int64_t cols, DType md,
                                         float* y) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n * cols;
       i += int64_t{blockDim.x} * gridDim.x) {
    const int64_t r = i / cols;
    float* dst = y + int64_t{token[r]} * cols + i % cols;
    *dst = RoundMd(*dst + RoundMd(out[i] * weight[r], md), md);
  }
}

__global__ void AddSigmoidGatedKernel(const float* out, const float* gate, int64_t n, int64_t cols,
                                      DType md, float* y) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n * cols;
       i += int64_t{blockDim.x} * gridDim.x) {
    const float sig = RoundMd(1.0f / (1.0f + expf(-gate[i / cols])), md);
    y[i] = RoundMd(y[i] + RoundMd(sig * out[i], md), md);
  }
}

}  // namespace

void GatherRowsByIndex(const void* src, int64_t row_bytes, const int32_t* index, int64_t n,
                       void* dst, cudaStream_t stream) {
  const bool wide =
      row_bytes % 16 == 0 &&
      ((reinterpret_cast<uintptr_t>(src) | reinterpret_cast<uintptr_t>(dst)) % 16) == 0;
  if (wide) {
    const int64_t units = row_bytes / 16;
    GatherRowsByIndexKernel<<<Blocks(n * units), kThreads, 0, stream>>>(
        static_cast<const uint4*>(src), units, index, n, static_cast<uint4*>(dst));
  } else {
    const int64_t units = row_bytes / 2;  // rows of 16- or 32-bit values
    GatherRowsByIndexKernel<<<Blocks(n * units), kThreads, 0, stream>>>(
        static_cast<const uint16_t*>(src), units, index, n, static_cast<uint16_t*>(dst));
  }
}

void ScatterAddWeighted(const float* out, const float* weight, const int32_t* token, int64_t n,
                        int64_t cols, DType md, float* y, cudaStream_t stream) {
  if (n == 0) return;
  ScatterAddWeightedKernel<<<Blocks(n * cols), kThreads, 0, stream>>>(out, weight, token, n, cols,
                                                                      md, y);
}

void AddSigmoidGated(const float* out, const float* gate, int64_t n, int64_t cols, DType md,
                     float* y, cudaStream_t stream) {
  AddSigmoidGatedKernel<<<Blocks(n * cols), kThreads, 0, stream>>>(out, gate, n, cols, md, y);
}

}  // namespace quantd::engine::cuda
