#include "cuda/moe_block.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "backend/cpu/moe_block.h"
#include "cuda/kernels.h"
#include "cuda/moe_kernels.h"
#include "io/status_macros.h"

namespace quantd::engine::cuda {

MoeOperands MoeOperandsOf(const DeviceMoe& moe, const ModelConfig& config, DType md) {
  auto mlp = [&](const DeviceExpert& e, int64_t intermediate) {
    MlpWeights w{e.gate.op(md),     e.up.op(md),     e.down.op(md),
                 e.gate.bias_ptr(), e.up.bias_ptr(), e.down.bias_ptr()};
    w.intermediate = intermediate;
    return w;
  };
  MoeOperands w;
  w.router = moe.router.op(md);
  for (const DeviceExpert& e : moe.experts) {
    w.experts.push_back(mlp(e, config.moe.expert_intermediate_size));
  }
  if (moe.has_shared_expert) {
    w.shared_expert = mlp(moe.shared_expert, config.moe.shared_expert_intermediate_size);
    w.shared_expert_gate = moe.shared_expert_gate.op(md);
  }
  return w;
}

absl::Status RouteOnDevice(Gemm& gemm, const LayerGeometry& g, const MoeOperands& w,
                           const void* x_op, DeviceRouting* routing, ForwardScratch* s,
                           cudaStream_t stream) {
  const ModelConfig& c = *g.config;
  const int64_t n = g.tokens;
  const int64_t experts = c.moe.num_experts;
  QUANTD_RETURN_IF_ERROR(Ensure(&s->router_logits, n * experts, sizeof(float)));
  QUANTD_RETURN_IF_ERROR(
      gemm.Linear(x_op, w.router, s->router_logits.f32(), n, experts, c.hidden_size, g.md));
  BiasRound(s->router_logits.f32(), nullptr, n, experts, g.md, stream);  // md(x · routerᵀ)
  Tensor logits({n, experts});
  QUANTD_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(logits.ptr(), s->router_logits.f32(),
                                              logits.data.size() * sizeof(float),
                                              cudaMemcpyDeviceToHost, stream));
  QUANTD_RETURN_IF_ERROR(CudaStatus(cudaStreamSynchronize(stream), "router logits"));
  const Routing r = RouteTokens(c.moe, logits, g.md);
  routing->offset.assign(1, 0);
  std::vector<int32_t> token;
  std::vector<float> weight;
  token.reserve(static_cast<size_t>(n * r.k));
  weight.reserve(static_cast<size_t>(n * r.k));
  for (size_t e = 0; e < r.tokens_of.size(); ++e) {
    for (int64_t t : r.tokens_of[e]) token.push_back(static_cast<int32_t>(t));
    weight.insert(weight.end(), r.weight_of[e].begin(), r.weight_of[e].end());
    routing->offset.push_back(static_cast<int64_t>(token.size()));
  }
  QUANTD_RETURN_IF_ERROR(
      Ensure(&routing->token, std::max<int64_t>(1, routing->total()), sizeof(int32_t)));
  QUANTD_RETURN_IF_ERROR(
      Ensure(&routing->weight, std::max<int64_t>(1, routing->total()), sizeof(float)));
  QUANTD_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(routing->token.as<void>(), token.data(),
                                              token.size() * sizeof(int32_t),
                                              cudaMemcpyHostToDevice, stream));
  QUANTD_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(routing->weight.as<void>(), weight.data(),
                                              weight.size() * sizeof(float), cudaMemcpyHostToDevice,
                                              stream));
  // The host vectors die with this call.
  return CudaStatus(cudaStreamSynchronize(stream), "routing upload");
}

absl::Status MoeBlockForward(Gemm& gemm, const LayerGeometry& g, const MoeOperands& w,
                             const DeviceRouting& routing, const void* x_op, const void* routed_x,
                             float* out, DeviceMoeCapture* cap, DType down_type, ForwardScratch* s,
                             cudaStream_t stream) {
  const ModelConfig& c = *g.config;
  const int64_t n = g.tokens;
  const int64_t h = c.hidden_size;
  const int64_t rows = routing.total();
  const int64_t x_elem = static_cast<int64_t>(DTypeSize(g.md));
  const int64_t d_elem = static_cast<int64_t>(DTypeSize(down_type));
  const int64_t im = c.moe.expert_intermediate_size;
  if (routed_x == nullptr) {
    DeviceBuffer& dst = cap != nullptr ? cap->routed_input : s->routed_x;
    QUANTD_RETURN_IF_ERROR(Ensure(&dst, std::max<int64_t>(1, rows) * h, x_elem));
    GatherRowsByIndex(x_op, h * x_elem, routing.token.as<int32_t>(), rows, dst.as<void>(), stream);
    routed_x = dst.as<void>();
  }
  if (cap != nullptr) {
    QUANTD_RETURN_IF_ERROR(Ensure(&cap->down_input, std::max<int64_t>(1, rows) * im, d_elem));
  }
  int64_t max_rows = 0;
  for (size_t e = 0; e + 1 < routing.offset.size(); ++e) {
    max_rows = std::max(max_rows, routing.rows(e));
  }
  QUANTD_RETURN_IF_ERROR(Ensure(&s->expert_out, std::max<int64_t>(1, max_rows) * h, sizeof(float)));
  QUANTD_CUDA_RETURN_IF_ERROR(
      cudaMemsetAsync(out, 0, static_cast<size_t>(n * h) * sizeof(float), stream));
  for (size_t e = 0; e < w.experts.size(); ++e) {
    const int64_t m = routing.rows(e);
    if (m == 0) continue;
    const int64_t r0 = routing.offset[e];
    LayerGeometry ge = g;
    ge.tokens = m;
    void* down_input = cap != nullptr ? cap->down_input.as<char>() + r0 * im * d_elem : nullptr;
    QUANTD_RETURN_IF_ERROR(MlpForward(gemm, ge, w.experts[e],
                                      static_cast<const char*>(routed_x) + r0 * h * x_elem,
                                      s->expert_out.f32(), DType::kF32, down_input, s, stream));
    ScatterAddWeighted(s->expert_out.f32(), routing.weight.f32() + r0,
                       routing.token.as<int32_t>() + r0, m, h, g.md, out, stream);
  }
  if (w.shared_expert.has_value()) {
    const int64_t ims = c.moe.shared_expert_intermediate_size;
    if (cap != nullptr) {
      QUANTD_RETURN_IF_ERROR(Ensure(&cap->shared_down_input, n * ims, d_elem));
    }
    QUANTD_RETURN_IF_ERROR(Ensure(&s->shared_out, n * h, sizeof(float)));
    QUANTD_RETURN_IF_ERROR(Ensure(&s->shared_gate, n, sizeof(float)));
    QUANTD_RETURN_IF_ERROR(
        MlpForward(gemm, g, *w.shared_expert, x_op, s->shared_out.f32(), DType::kF32,
                   cap != nullptr ? cap->shared_down_input.as<void>() : nullptr, s, stream));
    QUANTD_RETURN_IF_ERROR(
        gemm.Linear(x_op, w.shared_expert_gate, s->shared_gate.f32(), n, 1, h, g.md));
    BiasRound(s->shared_gate.f32(), nullptr, n, 1, g.md, stream);
    AddSigmoidGated(s->shared_out.f32(), s->shared_gate.f32(), n, h, g.md, out, stream);
  }
  QUANTD_CUDA_RETURN_IF_LAUNCH_FAILED("MoeBlockForward");
  return absl::OkStatus();
}

}  // namespace quantd::engine::cuda
