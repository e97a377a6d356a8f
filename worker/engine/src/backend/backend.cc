#include "backend/backend.h"

#include <algorithm>
#include <cmath>

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

std::string_view BackendNameFor(BackendKind kind) {
  switch (kind) {
    case BackendKind::kCpu:
      return "cpu";
    case BackendKind::kCuda:
      return "cuda";
    case BackendKind::kAuto:
#if defined(QUANTD_HAVE_CUDA)
      if (CudaDeviceAvailable()) return "cuda";
#endif
      return "cpu";
  }
  return "cpu";
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

void ScaleEmbeddingRows(const ModelConfig& config, DType md, Tensor* rows) {
  if (!config.scale_embeddings) return;
  const float normalizer =
      RoundTo(md, static_cast<float>(std::sqrt(static_cast<double>(config.hidden_size))));
  for (float& v : rows->data) v = RoundTo(md, v * normalizer);
}

MoeLayerStats MoeStatsOf(std::vector<int64_t> tokens_per_expert, int64_t min_tokens) {
  MoeLayerStats stats;
  stats.min_expert_tokens = min_tokens;
  for (size_t e = 0; e < tokens_per_expert.size(); ++e) {
    if (tokens_per_expert[e] < min_tokens) stats.under_calibrated.push_back(static_cast<int>(e));
  }
  stats.tokens_per_expert = std::move(tokens_per_expert);
  return stats;
}

ScalingDecision UnsearchedDecision(const ScalingGroup& group, int64_t channels) {
  ScalingDecision d;
  d.label = group.label;
  d.ratio_index = -1;
  d.scales.assign(static_cast<size_t>(channels), 1.0f);
  return d;
}

ScalingGroup FoldedGroup(const ScalingGroup& group, const LayerQuantSettings& settings) {
  ScalingGroup g = group;
  if (!settings.scale_router_inputs) g.float_consumers.clear();
  return g;
}

LayerWeights DequantizedLayer(const QuantizedLayer& layer) {
  LayerWeights w;
  w.index = layer.index;
  for (const NamedTensor& t : layer.floats) *FindFloatTensor(&w, t.name) = t.tensor;
  for (const QuantizedLinear& l : layer.linears) {
    const GemmPackedLinear& p = l.packed;
    LinearWeights* target = FindLinear(&w, l.name);
    target->weight = DequantizeGemm(p);
    if (p.bias.has_value()) {
      Tensor b({p.out_features});
      for (int64_t j = 0; j < p.out_features; ++j) b.data[j] = F16ToFloat((*p.bias)[j]);
      target->bias = std::move(b);
    }
  }
  return w;
}

}  // namespace quantd::engine
