// cuBLAS products of the CUDA backend. Operands are in the model dtype (float16 / bfloat16 use the
// tensor cores with float32 accumulation; float32 runs as plain SGEMM, no TF32), results in
// float32.
#ifndef QUANTD_ENGINE_CUDA_GEMM_H_
#define QUANTD_ENGINE_CUDA_GEMM_H_

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <memory>
#include <tuple>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/dtype.h"

namespace quantd::engine::cuda {

class Gemm {
 public:
  Gemm();
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;

  absl::Status Init(cudaStream_t stream);

  // y[n, out] = x[n, in] · w[out, in]ᵀ; x and w in dtype md, y in y_type (float32, or md: the
  // float32 accumulator rounded once, as md(x · wᵀ) of the CPU reference).
  absl::Status Linear(const void* x, const void* w, void* y, int64_t n, int64_t out, int64_t in,
                      DType md, DType y_type = DType::kF32);

  // y[n, out] = md(x · wᵀ + bias) for 16-bit md: cuBLASLt's bias epilogue adds the bias (md
  // values, dtype md) to the float32 accumulator and rounds once to md, as the CPU reference's
  // md(acc + bias), with no pass over y. A null bias is Linear(..., y_type = md).
  // Descriptors, layouts and the heuristic's algorithm are made once per shape and reused.
  absl::Status LinearBias(const void* x, const void* w, const void* bias, void* y, int64_t n,
                          int64_t out, int64_t in, DType md);

  // Two products of one input in one strided-batched launch: y0 = x · w0ᵀ and y1 = x · w1ᵀ, both
  // w [out, in] and y [n, out] as in Linear (y_type as there). The batch strides are the pointer
  // distances w1 − w0 and y1 − y0 (taken in the order that makes the first positive); where the
  // second is then not positive, two Linear launches.
  absl::Status LinearPair(const void* x, const void* w0, const void* w1, void* y0, void* y1,
                          int64_t n, int64_t out, int64_t in, DType md, DType y_type);

  // g[c, c] = x[n, c]ᵀ · x[n, c] (x in md, g float32); with `accumulate`, g += that (token chunks).
  absl::Status Gram(const void* x, float* g, int64_t n, int64_t c, DType md,
                    bool accumulate = false);

  // Column-major strided-batched float32 product (no TF32): c_b = op(a_b) · op(b_b).
  struct Batched {
    bool trans_a, trans_b;
    int64_t m, n, k;
    const float* a;
    int64_t lda, stride_a;
    const float* b;
    int64_t ldb, stride_b;
    float* c;
    int64_t ldc, stride_c;
    int64_t batch;
  };
  absl::Status BatchedF32(const Batched& p);

  // The same product to float32 accuracy on the TF32 tensor cores, for an `a` whose values are
  // exact in TF32 (16-bit md values) and a `b` given split as hi + lo (SplitTf32; p.b is hi, b_lo
  // has p.b's layout): c = a·b_lo + a·b_hi, both terms exact products summed in float32.
  absl::Status BatchedTf32Split(const Batched& p, const float* b_lo);

  // p[m, c] = a[m, c] · b[c, c] with b symmetric, to float32 accuracy on the TF32 tensor cores:
  // each operand is given split as hi + lo (SplitTf32 in kernels.h, hi exact in TF32), and
  // p = a_hi·b_lo + a_lo·b_hi + a_hi·b_hi (the dropped a_lo·b_lo is below float32's rounding).
  absl::Status MulSymmetricSplit(const float* a_hi, const float* a_lo, const float* b_hi,
                                 const float* b_lo, float* p, int64_t m, int64_t c);

 private:
  // p.c = op(p.a) · op(b) + beta · p.c over p's batch, float32 operands, computed as `compute`.
  absl::Status StridedBatched(const Batched& p, const float* b, float beta,
                              cublasComputeType_t compute, const char* what);
  struct LtPlan;  // a LinearBias shape's cuBLASLt descriptors and algorithm
  using LtKey = std::tuple<int64_t, int64_t, int64_t, DType>;  // n, out, in, md
  absl::StatusOr<LtPlan*> BiasPlan(int64_t n, int64_t out, int64_t in, DType md);

  std::map<LtKey, std::unique_ptr<LtPlan>> lt_plans_;  // destroyed before lt_
  cublasHandle_t handle_ = nullptr;
  cublasLtHandle_t lt_ = nullptr;
  cudaStream_t stream_ = nullptr;
  void* lt_workspace_ = nullptr;  // cuBLASLt's scratch, kLtWorkspaceBytes
};

}  // namespace quantd::engine::cuda

#endif  // QUANTD_ENGINE_CUDA_GEMM_H_
