#include "cuda/gemm.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace quantd::engine::cuda {
namespace {

absl::Status CublasStatus(cublasStatus_t st, const char* what) {
  if (st == CUBLAS_STATUS_SUCCESS) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("cuBLAS error in ", what, ": ", cublasGetStatusName(st),
                                          " (", cublasGetStatusString(st), ")"));
}

cudaDataType_t CudaType(DType md) {
  switch (md) {
    case DType::kF16:
      return CUDA_R_16F;
    case DType::kBF16:
      return CUDA_R_16BF;
    default:
      return CUDA_R_32F;
  }
}

int I(int64_t v) { return static_cast<int>(v); }

}  // namespace

Gemm::~Gemm() {
  if (handle_ != nullptr) cublasDestroy(handle_);
}

absl::Status Gemm::Init(cudaStream_t stream) {
  if (absl::Status s = CublasStatus(cublasCreate(&handle_), "cublasCreate"); !s.ok()) return s;
  return CublasStatus(cublasSetStream(handle_, stream), "cublasSetStream");
}

absl::Status Gemm::Linear(const void* x, const void* w, void* y, int64_t n, int64_t out, int64_t in,
                          DType md, DType y_type) {
  const float one = 1.0f, zero = 0.0f;
  // Column-major view: yᵀ[out, n] = w(col-major [in, out])ᵀ · xᵀ(col-major [in, n]).
  return CublasStatus(
      cublasGemmEx(handle_, CUBLAS_OP_T, CUBLAS_OP_N, I(out), I(n), I(in), &one, w, CudaType(md),
                   I(in), x, CudaType(md), I(in), &zero, y, CudaType(y_type), I(out),
                   CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
      "Linear");
}

absl::Status Gemm::Gram(const void* x, float* g, int64_t n, int64_t c, DType md) {
  const float one = 1.0f, zero = 0.0f;
  // x row-major [n, c] is col-major [c, n]; g = x_cm · x_cmᵀ.
  return CublasStatus(cublasGemmEx(handle_, CUBLAS_OP_N, CUBLAS_OP_T, I(c), I(c), I(n), &one, x,
                                   CudaType(md), I(c), x, CudaType(md), I(c), &zero, g, CUDA_R_32F,
                                   I(c), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                      "Gram");
}

absl::Status Gemm::BatchedF32(const Batched& p) {
  const float one = 1.0f, zero = 0.0f;
  return CublasStatus(
      cublasSgemmStridedBatched(handle_, p.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                                p.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, I(p.m), I(p.n), I(p.k), &one,
                                p.a, I(p.lda), p.stride_a, p.b, I(p.ldb), p.stride_b, &zero, p.c,
                                I(p.ldc), p.stride_c, I(p.batch)),
      "BatchedF32");
}

absl::Status Gemm::MulSymmetricSplit(const float* a_hi, const float* a_lo, const float* b_hi,
                                     const float* b_lo, float* p, int64_t m, int64_t c) {
  // Row-major p = a · b is col-major pᵀ = bᵀ · aᵀ = b · aᵀ (b symmetric). Small terms first.
  const std::pair<const float*, const float*> terms[] = {{b_lo, a_hi}, {b_hi, a_lo}, {b_hi, a_hi}};
  const float one = 1.0f;
  float beta = 0.0f;
  for (const auto& [b, a] : terms) {
    if (absl::Status s =
            CublasStatus(cublasGemmEx(handle_, CUBLAS_OP_N, CUBLAS_OP_N, I(c), I(m), I(c), &one, b,
                                      CUDA_R_32F, I(c), a, CUDA_R_32F, I(c), &beta, p, CUDA_R_32F,
                                      I(c), CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_GEMM_DEFAULT),
                         "MulSymmetricSplit");
        !s.ok()) {
      return s;
    }
    beta = 1.0f;
  }
  return absl::OkStatus();
}

}  // namespace quantd::engine::cuda
