#include "cuda/gemm.h"

#include <cstdint>
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

constexpr size_t kLtWorkspaceBytes = size_t{32} << 20;

}  // namespace

// Owns the cuBLASLt descriptors of one LinearBias shape; the bias pointer is set per call.
struct Gemm::LtPlan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  cublasLtMatmulAlgo_t algo{};
  ~LtPlan() {
    if (pref != nullptr) cublasLtMatmulPreferenceDestroy(pref);
    for (cublasLtMatrixLayout_t l : {a, b, c}) {
      if (l != nullptr) cublasLtMatrixLayoutDestroy(l);
    }
    if (op != nullptr) cublasLtMatmulDescDestroy(op);
  }
};

Gemm::Gemm() = default;

Gemm::~Gemm() {
  lt_plans_.clear();
  if (handle_ != nullptr) cublasDestroy(handle_);
  if (lt_ != nullptr) cublasLtDestroy(lt_);
  if (lt_workspace_ != nullptr) cudaFree(lt_workspace_);
}

absl::Status Gemm::Init(cudaStream_t stream) {
  stream_ = stream;
  if (absl::Status s = CublasStatus(cublasCreate(&handle_), "cublasCreate"); !s.ok()) return s;
  if (absl::Status s = CublasStatus(cublasLtCreate(&lt_), "cublasLtCreate"); !s.ok()) return s;
  if (cudaMalloc(&lt_workspace_, kLtWorkspaceBytes) != cudaSuccess) {
    lt_workspace_ = nullptr;
    return absl::ResourceExhaustedError("cannot allocate cuBLASLt's 32 MiB workspace on the GPU");
  }
  return CublasStatus(cublasSetStream(handle_, stream), "cublasSetStream");
}

absl::StatusOr<Gemm::LtPlan*> Gemm::BiasPlan(int64_t n, int64_t out, int64_t in, DType md) {
  const LtKey key{n, out, in, md};
  if (auto it = lt_plans_.find(key); it != lt_plans_.end()) return it->second.get();
  // Column-major as Linear: yᵀ[out, n] = op(w)[out, in] · xᵀ[in, n]; the bias runs along out.
  auto plan = std::make_unique<LtPlan>();
  const cudaDataType_t t = CudaType(md);
  const cublasOperation_t trans = CUBLAS_OP_T, no_trans = CUBLAS_OP_N;
  const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
  const size_t workspace = kLtWorkspaceBytes;
  cublasLtMatmulHeuristicResult_t best{};
  int found = 0;
  const cublasStatus_t steps[] = {
      cublasLtMatmulDescCreate(&plan->op, CUBLAS_COMPUTE_32F, CUDA_R_32F),
      cublasLtMatmulDescSetAttribute(plan->op, CUBLASLT_MATMUL_DESC_TRANSA, &trans, sizeof(trans)),
      cublasLtMatmulDescSetAttribute(plan->op, CUBLASLT_MATMUL_DESC_TRANSB, &no_trans,
                                     sizeof(no_trans)),
      cublasLtMatmulDescSetAttribute(plan->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue,
                                     sizeof(epilogue)),
      cublasLtMatrixLayoutCreate(&plan->a, t, static_cast<uint64_t>(in), static_cast<uint64_t>(out),
                                 in),
      cublasLtMatrixLayoutCreate(&plan->b, t, static_cast<uint64_t>(in), static_cast<uint64_t>(n),
                                 in),
      cublasLtMatrixLayoutCreate(&plan->c, t, static_cast<uint64_t>(out), static_cast<uint64_t>(n),
                                 out),
      cublasLtMatmulPreferenceCreate(&plan->pref),
      cublasLtMatmulPreferenceSetAttribute(plan->pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                           &workspace, sizeof(workspace)),
      cublasLtMatmulAlgoGetHeuristic(lt_, plan->op, plan->a, plan->b, plan->c, plan->c, plan->pref,
                                     1, &best, &found)};
  for (cublasStatus_t st : steps) {
    if (absl::Status s = CublasStatus(st, "LinearBias setup"); !s.ok()) return s;
  }
  if (found == 0) return absl::InternalError("cuBLASLt has no algorithm for a bias epilogue GEMM");
  plan->algo = best.algo;
  LtPlan* p = plan.get();
  lt_plans_.emplace(key, std::move(plan));
  return p;
}

absl::Status Gemm::LinearBias(const void* x, const void* w, const void* bias, void* y, int64_t n,
                              int64_t out, int64_t in, DType md) {
  if (bias == nullptr) return Linear(x, w, y, n, out, in, md, md);
  absl::StatusOr<LtPlan*> plan = BiasPlan(n, out, in, md);
  if (!plan.ok()) return plan.status();
  LtPlan& p = **plan;
  if (absl::Status s =
          CublasStatus(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                      &bias, sizeof(bias)),
                       "LinearBias bias pointer");
      !s.ok()) {
    return s;
  }
  const float one = 1.0f, zero = 0.0f;
  return CublasStatus(cublasLtMatmul(lt_, p.op, &one, w, p.a, x, p.b, &zero, y, p.c, y, p.c,
                                     &p.algo, lt_workspace_, kLtWorkspaceBytes, stream_),
                      "LinearBias");
}

absl::Status Gemm::LinearPair(const void* x, const void* w0, const void* w1, void* y0, void* y1,
                              int64_t n, int64_t out, int64_t in, DType md, DType y_type) {
  const auto distance = [](const void* from, const void* to, size_t elem) -> int64_t {
    const auto diff =
        static_cast<int64_t>(reinterpret_cast<uintptr_t>(to) - reinterpret_cast<uintptr_t>(from));
    return diff % static_cast<int64_t>(elem) == 0 ? diff / static_cast<int64_t>(elem) : 0;
  };
  if (reinterpret_cast<uintptr_t>(w1) < reinterpret_cast<uintptr_t>(w0)) {
    std::swap(w0, w1);  // positive weight stride
    std::swap(y0, y1);
  }
  const int64_t stride_w = distance(w0, w1, DTypeSize(md));
  const int64_t stride_y = distance(y0, y1, DTypeSize(y_type));
  if (stride_w <= 0 || stride_y <= 0) {  // not expressible as positive strides: two launches
    if (absl::Status s = Linear(x, w0, y0, n, out, in, md, y_type); !s.ok()) return s;
    return Linear(x, w1, y1, n, out, in, md, y_type);
  }
  const float one = 1.0f, zero = 0.0f;
  return CublasStatus(
      cublasGemmStridedBatchedEx(handle_, CUBLAS_OP_T, CUBLAS_OP_N, I(out), I(n), I(in), &one, w0,
                                 CudaType(md), I(in), stride_w, x, CudaType(md), I(in), 0, &zero,
                                 y0, CudaType(y_type), I(out), stride_y, 2, CUBLAS_COMPUTE_32F,
                                 CUBLAS_GEMM_DEFAULT),
      "LinearPair");
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

absl::Status Gemm::Gram(const void* x, float* g, int64_t n, int64_t c, DType md, bool accumulate) {
  const float one = 1.0f, beta = accumulate ? 1.0f : 0.0f;
  // x row-major [n, c] is col-major [c, n]; g = x_cm · x_cmᵀ.
  return CublasStatus(cublasGemmEx(handle_, CUBLAS_OP_N, CUBLAS_OP_T, I(c), I(c), I(n), &one, x,
                                   CudaType(md), I(c), x, CudaType(md), I(c), &beta, g, CUDA_R_32F,
                                   I(c), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                      "Gram");
}

absl::Status Gemm::StridedBatched(const Batched& p, const float* b, float beta,
                                  cublasComputeType_t compute, const char* what) {
  const float one = 1.0f;
  return CublasStatus(
      cublasGemmStridedBatchedEx(handle_, p.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                                 p.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, I(p.m), I(p.n), I(p.k),
                                 &one, p.a, CUDA_R_32F, I(p.lda), p.stride_a, b, CUDA_R_32F,
                                 I(p.ldb), p.stride_b, &beta, p.c, CUDA_R_32F, I(p.ldc), p.stride_c,
                                 I(p.batch), compute, CUBLAS_GEMM_DEFAULT),
      what);
}

absl::Status Gemm::BatchedF32(const Batched& p) {
  return StridedBatched(p, p.b, 0.0f, CUBLAS_COMPUTE_32F, "BatchedF32");
}

absl::Status Gemm::BatchedTf32Split(const Batched& p, const float* b_lo) {
  // Small term first.
  if (absl::Status s =
          StridedBatched(p, b_lo, 0.0f, CUBLAS_COMPUTE_32F_FAST_TF32, "BatchedTf32Split");
      !s.ok()) {
    return s;
  }
  return StridedBatched(p, p.b, 1.0f, CUBLAS_COMPUTE_32F_FAST_TF32, "BatchedTf32Split");
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
