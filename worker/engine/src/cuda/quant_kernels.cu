// AWQ weight kernels (see kernels.h): the scale-search trial weights Q(W·s)/s for many ratios in
// one launch, the final float16 quantization and GEMM packing, the scale folding, and the clip
// search over per-group Gram matrices. Arithmetic follows awq/pseudo_quantize.cc step by step.
#include <algorithm>

#include "cuda/device_math.cuh"
#include "cuda/kernels.h"

namespace quantd::engine::cuda {
namespace {

constexpr int kThreads = 256;

unsigned Blocks(int64_t n) {
  return static_cast<unsigned>(std::min<int64_t>((n + kThreads - 1) / kThreads, 1 << 20));
}

#define GRID_STRIDE(i, n)                                                   \
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < (n); \
       i += int64_t{gridDim.x} * blockDim.x)

// One warp per (ratio, row, group). The scaled value md(w · s) is recomputed in the second pass
// instead of being held, so any group size works.
__global__ void ScaleQuantizeUnscaleKernel(const float* w, const float* s, int ratios, int64_t rows,
                                           int64_t cols, int64_t group, DType md, float* trial,
                                           float* delta, void* operand) {
  const int64_t groups = cols / group;
  const int64_t warp = (blockIdx.x * int64_t{blockDim.x} + threadIdx.x) / 32;
  const int lane = threadIdx.x & 31;
  if (warp >= ratios * rows * groups) return;
  const int64_t k = warp / (rows * groups);
  const int64_t rg = warp % (rows * groups);
  const int64_t row = rg / groups;
  const int64_t c0 = (rg % groups) * group;
  const float* src = w + row * cols + c0;
  const float* sk = s + k * cols + c0;
  float mx = -INFINITY, mn = INFINITY;
  for (int64_t j = lane; j < group; j += 32) {
    const float v = RoundMd(__fmul_rn(src[j], sk[j]), md);
    mx = fmaxf(mx, v);
    mn = fminf(mn, v);
  }
  mx = WarpMax(mx);
  mn = WarpMin(mn);
  const GroupParams p = QuantParams(mx, mn, md);
  const int64_t base = k * rows * cols + row * cols + c0;
  for (int64_t j = lane; j < group; j += 32) {
    const float v = RoundMd(__fmul_rn(src[j], sk[j]), md);
    const float deq = Dequant(QuantCode(v, p, md), p, md);
    const float out = RoundMd(deq / sk[j], md);
    if (trial != nullptr) trial[base + j] = out;
    if (delta != nullptr) delta[base + j] = out - src[j];
    if (operand != nullptr) StoreOperand(operand, static_cast<size_t>(base + j), out, md);
  }
}

__global__ void QuantizeF16Kernel(const float* w, int64_t rows, int64_t cols, int64_t group,
                                  uint8_t* codes, float* scales, uint8_t* zeros) {
  const int64_t groups = cols / group;
  const int64_t warp = (blockIdx.x * int64_t{blockDim.x} + threadIdx.x) / 32;
  const int lane = threadIdx.x & 31;
  if (warp >= rows * groups) return;
  const int64_t row = warp / groups;
  const int64_t c0 = (warp % groups) * group;
  const float* src = w + row * cols + c0;
  constexpr DType kH = DType::kF16;
  float mx = -INFINITY, mn = INFINITY;
  for (int64_t j = lane; j < group; j += 32) {
    const float v = RoundMd(src[j], kH);
    mx = fmaxf(mx, v);
    mn = fminf(mn, v);
  }
  mx = WarpMax(mx);
  mn = WarpMin(mn);
  const GroupParams p = QuantParams(mx, mn, kH);
  for (int64_t j = lane; j < group; j += 32) {
    codes[row * cols + c0 + j] = static_cast<uint8_t>(QuantCode(RoundMd(src[j], kH), p, kH));
  }
  if (lane == 0) {
    scales[warp] = p.scale;
    zeros[warp] = static_cast<uint8_t>(p.zero);
  }
}

__constant__ int kPackOrder[8] = {0, 2, 4, 6, 1, 3, 5, 7};

// One thread per packed word of a [rows, out/8] matrix; value(r, n) = src[n · src_stride + r].
__global__ void PackNibblesKernel(const uint8_t* src, int64_t rows, int64_t out, int64_t src_stride,
                                  int32_t* dst) {
  const int64_t words = out / 8;
  GRID_STRIDE(i, rows * words) {
    const int64_t r = i / words;
    const int64_t c = i % words;
    uint32_t word = 0;
    for (int n = 0; n < 8; ++n) {
      word |= (static_cast<uint32_t>(src[(8 * c + kPackOrder[n]) * src_stride + r]) & 0xFu)
              << (4 * n);
    }
    dst[i] = static_cast<int32_t>(word);
  }
}

__global__ void TransposeScalesKernel(const float* scales, int64_t out, int64_t groups,
                                      uint16_t* dst) {
  GRID_STRIDE(i, out * groups) {
    const int64_t g = i / out;
    const int64_t n = i % out;
    dst[i] = __half_as_ushort(__float2half_rn(scales[n * groups + g]));
  }
}

__global__ void MultiplyColumnsKernel(float* w, const float* s, int64_t n, int64_t cols, DType md) {
  GRID_STRIDE(i, n) { w[i] = RoundMd(__fmul_rn(w[i], s[i % cols]), md); }
}

__global__ void DivideColumnsKernel(float* x, const float* s, int64_t n, int64_t cols, DType md) {
  GRID_STRIDE(i, n) { x[i] = RoundMd(x[i] / s[i % cols], md); }
}

__global__ void DivideOnePlusKernel(float* w, const float* s, int64_t n, DType md) {
  GRID_STRIDE(i, n) {
    const float plus_one = RoundMd(__fadd_rn(w[i], 1.0f), md);
    w[i] = RoundMd(__fadd_rn(RoundMd(plus_one / s[i], md), -1.0f), md);
  }
}

__global__ void DivideRowsKernel(float* w, const float* s, int64_t n, int64_t cols, DType md) {
  GRID_STRIDE(i, n) { w[i] = RoundMd(w[i] / s[i / cols], md); }
}

__global__ void GatherRowsKernel(const void* x, DType x_type, int64_t step, int64_t kept,
                                 int64_t cols, float* out) {
  GRID_STRIDE(i, kept * cols) { out[i] = LoadAs(x, (i / cols) * step * cols + i % cols, x_type); }
}

__global__ void ApplyClipKernel(float* w, const float* max_val, int64_t n, int64_t cols,
                                int64_t group) {
  const int64_t groups = cols / group;
  GRID_STRIDE(i, n) {
    const float m = max_val[(i / cols) * groups + (i % cols) / group];
    w[i] = ClampStd(w[i], -m, m);
  }
}

constexpr int kClipSteps = kClipStepCount;

// One warp per (step i, row o, group g of the chunk): the clipped, quantized group
// Q(clamp(w, ±md(m0 · (1 − i/20)))) into trials [ng, steps · rows, group]; step 0 also records m0.
__global__ void ClipTrialsKernel(const float* w, int64_t rows, int64_t cols, int64_t group,
                                 int64_t g0, int64_t ng, DType md, float* trials, float* m0_out) {
  const int64_t groups = cols / group;
  const int64_t warp = (blockIdx.x * int64_t{blockDim.x} + threadIdx.x) / 32;
  const int lane = threadIdx.x & 31;
  if (warp >= ng * kClipSteps * rows) return;
  const int64_t gl = warp / (kClipSteps * rows);
  const int64_t io = warp % (kClipSteps * rows);
  const int i = static_cast<int>(io / rows);
  const int64_t o = io % rows;
  const int64_t g = g0 + gl;
  const float* src = w + o * cols + g * group;
  float amax = 0.0f;
  for (int64_t j = lane; j < group; j += 32) amax = fmaxf(amax, fabsf(src[j]));
  amax = WarpMax(amax);
  const float shrink = static_cast<float>(1.0 - static_cast<double>(i) / 20.0);
  const float m = RoundMd(__fmul_rn(amax, shrink), md);
  float mx = -INFINITY, mn = INFINITY;
  for (int64_t j = lane; j < group; j += 32) {
    const float t = ClampStd(src[j], -m, m);
    mx = fmaxf(mx, t);
    mn = fminf(mn, t);
  }
  mx = WarpMax(mx);
  mn = WarpMin(mn);
  const GroupParams p = QuantParams(mx, mn, md);
  float* dst = trials + (gl * kClipSteps * rows + io) * group;
  for (int64_t j = lane; j < group; j += 32) {
    dst[j] = Dequant(QuantCode(ClampStd(src[j], -m, m), p, md), p, md);
  }
  if (i == 0 && lane == 0) m0_out[o * groups + g] = amax;
}

// One thread per (group of the chunk, step, row): err = md(Σ_t md(d²) / n_tok) with
// d = md(md(cur) − md(ref)), the float32 sum of AutoAWQ's md tensors.
__global__ void ClipErrorsKernel(const float* cur, const float* ref, int64_t ng, int64_t n_tok,
                                 int64_t rows, DType md, float* err) {
  const int64_t sr = kClipSteps * rows;
  GRID_STRIDE(idx, ng * sr) {
    const int64_t gl = idx / sr;
    const int64_t io = idx % sr;
    const int64_t o = io % rows;
    const float* c = cur + gl * n_tok * sr + io;
    const float* r = ref + gl * n_tok * rows + o;
    float sum = 0.0f;
    for (int64_t t = 0; t < n_tok; ++t) {
      const float d = RoundMd(RoundMd(c[t * sr], md) - RoundMd(r[t * rows], md), md);
      sum += RoundMd(__fmul_rn(d, d), md);
    }
    err[idx] = RoundMd(__fmul_rn(sum, 1.0f / static_cast<float>(n_tok)), md);
  }
}

// One thread per (row, group of the chunk): the first strictly smallest error over the steps.
__global__ void ClipSelectKernel(const float* err, const float* m0, int64_t rows, int64_t groups,
                                 int64_t g0, int64_t ng, DType md, float* max_val,
                                 uint8_t* shrink_index) {
  GRID_STRIDE(idx, ng * rows) {
    const int64_t gl = idx / rows;
    const int64_t o = idx % rows;
    const int64_t at = o * groups + g0 + gl;
    float min_err = RoundMd(1e9f, md);
    int best = 0;
    for (int i = 0; i < kClipSteps; ++i) {
      const float e = err[(gl * kClipSteps + i) * rows + o];
      if (e < min_err) {  // strict: ties keep the larger bound
        min_err = e;
        best = i;
      }
    }
    const float shrink = static_cast<float>(1.0 - static_cast<double>(best) / 20.0);
    max_val[at] = RoundMd(__fmul_rn(m0[at], shrink), md);
    shrink_index[at] = static_cast<uint8_t>(best);
  }
}

}  // namespace

void ScaleQuantizeUnscale(const float* w, const float* s, int ratios, int64_t rows, int64_t cols,
                          int64_t group, DType md, float* trial, float* delta, void* operand,
                          cudaStream_t stream) {
  const int64_t warps = ratios * rows * (cols / group);
  ScaleQuantizeUnscaleKernel<<<Blocks(warps * 32), kThreads, 0, stream>>>(
      w, s, ratios, rows, cols, group, md, trial, delta, operand);
}

void QuantizeF16(const float* w, int64_t rows, int64_t cols, int64_t group, uint8_t* codes,
                 float* scales, uint8_t* zeros, cudaStream_t stream) {
  const int64_t warps = rows * (cols / group);
  QuantizeF16Kernel<<<Blocks(warps * 32), kThreads, 0, stream>>>(w, rows, cols, group, codes,
                                                                 scales, zeros);
}

void PackGemm(const uint8_t* codes, const uint8_t* zeros, const float* scales, int64_t out,
              int64_t in, int64_t group, int32_t* qweight, int32_t* qzeros, uint16_t* scales_t,
              cudaStream_t stream) {
  const int64_t groups = in / group;
  PackNibblesKernel<<<Blocks(in * out / 8), kThreads, 0, stream>>>(codes, in, out, in, qweight);
  PackNibblesKernel<<<Blocks(groups * out / 8), kThreads, 0, stream>>>(zeros, groups, out, groups,
                                                                       qzeros);
  TransposeScalesKernel<<<Blocks(groups * out), kThreads, 0, stream>>>(scales, out, groups,
                                                                       scales_t);
}

void MultiplyColumns(float* w, const float* s, int64_t rows, int64_t cols, DType md,
                     cudaStream_t stream) {
  MultiplyColumnsKernel<<<Blocks(rows * cols), kThreads, 0, stream>>>(w, s, rows * cols, cols, md);
}

void DivideColumns(float* x, const float* s, int64_t rows, int64_t cols, DType md,
                   cudaStream_t stream) {
  DivideColumnsKernel<<<Blocks(rows * cols), kThreads, 0, stream>>>(x, s, rows * cols, cols, md);
}

void DivideOnePlusColumns(float* w, const float* s, int64_t n, DType md, cudaStream_t stream) {
  DivideOnePlusKernel<<<Blocks(n), kThreads, 0, stream>>>(w, s, n, md);
}

void DivideRows(float* w, const float* s, int64_t first, int64_t n, int64_t cols, DType md,
                cudaStream_t stream) {
  DivideRowsKernel<<<Blocks(n * cols), kThreads, 0, stream>>>(w + first * cols, s, n * cols, cols,
                                                              md);
}

void GatherRows(const void* x, DType x_type, int64_t step, int64_t kept, int64_t cols, float* out,
                cudaStream_t stream) {
  GatherRowsKernel<<<Blocks(kept * cols), kThreads, 0, stream>>>(x, x_type, step, kept, cols, out);
}

void ApplyClip(float* w, const float* max_val, int64_t rows, int64_t cols, int64_t group,
               cudaStream_t stream) {
  ApplyClipKernel<<<Blocks(rows * cols), kThreads, 0, stream>>>(w, max_val, rows * cols, cols,
                                                                group);
}

void ClipTrials(const float* w, int64_t rows, int64_t cols, int64_t group, int64_t g0, int64_t ng,
                DType md, float* trials, float* m0, cudaStream_t stream) {
  const int64_t warps = ng * kClipSteps * rows;
  ClipTrialsKernel<<<Blocks(warps * 32), kThreads, 0, stream>>>(w, rows, cols, group, g0, ng, md,
                                                                trials, m0);
}

void ClipErrors(const float* cur, const float* ref, int64_t ng, int64_t n_tok, int64_t rows,
                DType md, float* err, cudaStream_t stream) {
  ClipErrorsKernel<<<Blocks(ng * kClipSteps * rows), kThreads, 0, stream>>>(cur, ref, ng, n_tok,
                                                                            rows, md, err);
}

void ClipSelect(const float* err, const float* m0, int64_t rows, int64_t groups, int64_t g0,
                int64_t ng, DType md, float* max_val, uint8_t* shrink_index, cudaStream_t stream) {
  ClipSelectKernel<<<Blocks(ng * rows), kThreads, 0, stream>>>(err, m0, rows, groups, g0, ng, md,
                                                               max_val, shrink_index);
}

}  // namespace quantd::engine::cuda
