#include "backend/backend.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "backend/cpu/cpu_backend.h"
#if defined(QUANTD_HAVE_CUDA)
#include "cuda/cuda_backend.h"
#endif

namespace quantd::engine {

absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(BackendKind kind) {
  switch (kind) {
    case BackendKind::kAuto:
#if defined(QUANTD_HAVE_CUDA)
      // The CUDA backend whenever a GPU is present, the CPU reference otherwise.
      if (CudaDeviceAvailable()) return CreateCudaBackend();
#endif
      return CreateCpuBackend();
    case BackendKind::kCpu:
      return CreateCpuBackend();
    case BackendKind::kCuda:
#if defined(QUANTD_HAVE_CUDA)
      return CreateCudaBackend();
#endif
      return absl::FailedPreconditionError(
          "backend 'cuda' was requested but this build has no CUDA backend; use --backend cpu "
          "or auto");
  }
  return CreateCpuBackend();
}

absl::StatusOr<int64_t> UniformBlockLength(const std::vector<std::vector<int32_t>>& blocks) {
  if (blocks.empty()) return absl::InvalidArgumentError("no token blocks to embed");
  const size_t len = blocks.front().size();
  for (const auto& block : blocks) {
    if (block.size() != len) {
      return absl::InvalidArgumentError("token blocks must all have the same length");
    }
  }
  return static_cast<int64_t>(len);
}

absl::Status GatherEmbeddingRows(const Tensor& embedding, const std::vector<int32_t>& block,
                                 float* out) {
  const int64_t vocab = embedding.dim(0);
  const int64_t hidden = embedding.dim(1);
  for (int32_t id : block) {
    if (id < 0 || id >= vocab) {
      return absl::InvalidArgumentError(
          absl::StrCat("token id ", id, " is outside the embedding's vocabulary of ", vocab));
    }
    out = std::copy_n(embedding.ptr() + id * hidden, hidden, out);
  }
  return absl::OkStatus();
}

int64_t QualitySliceBlocks(int64_t blocks) {
  return std::max<int64_t>(1, (blocks + kQualitySliceDivisor - 1) / kQualitySliceDivisor);
}

LayerWeights DequantizedLayer(const QuantizedLayer& layer) {
  LayerWeights w;
  w.input_layernorm = layer.input_layernorm;
  w.post_attention_layernorm = layer.post_attention_layernorm;
  w.q_norm = layer.q_norm;
  w.k_norm = layer.k_norm;
  LinearWeights* targets[] = {&w.q_proj,    &w.k_proj,  &w.v_proj,   &w.o_proj,
                              &w.gate_proj, &w.up_proj, &w.down_proj};
  for (size_t i = 0; i < layer.linears.size() && i < 7; ++i) {
    const GemmPackedLinear& p = layer.linears[i].packed;
    targets[i]->weight = DequantizeGemm(p);
    if (p.bias.has_value()) {
      Tensor b({p.out_features});
      for (int64_t j = 0; j < p.out_features; ++j)
        b.data[j] = FromHalfBits(p.scale_dtype, (*p.bias)[j]);
      targets[i]->bias = std::move(b);
    }
  }
  return w;
}

}  // namespace quantd::engine
