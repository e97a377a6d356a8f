#include "cuda/moe_search.h"

#include <algorithm>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "awq/scale_search.h"
#include "cuda/kernels.h"
#include "cuda/moe_block.h"
#include "io/status_macros.h"

namespace quantd::engine::cuda {
namespace {

// The operand slot of `l` in `w` (an expert's or the shared expert's gate/up); null if none.
const void** OperandSlot(const DeviceMoe& moe, const DeviceLinear* l, MoeOperands* w) {
  for (size_t e = 0; e < moe.experts.size(); ++e) {
    if (l == &moe.experts[e].gate) return &w->experts[e].gate;
    if (l == &moe.experts[e].up) return &w->experts[e].up;
  }
  if (w->shared_expert.has_value()) {
    if (l == &moe.shared_expert.gate) return &w->shared_expert->gate;
    if (l == &moe.shared_expert.up) return &w->shared_expert->up;
  }
  return nullptr;
}

}  // namespace

absl::StatusOr<double> MoeTrialLosses(const AwqLayerRun& run, const ScalingGroup& group,
                                      const std::vector<DeviceLinear*>& linears,
                                      const LayerGeometry& geo, const float* s_dev, double* losses,
                                      AwqWorkspace* ws) {
  const ModelConfig& c = *run.config;
  const DType md = run.settings.md;
  const int64_t cols = c.hidden_size;
  const int64_t gs = run.settings.group_size;
  const int64_t n = geo.tokens;
  const int64_t h = c.hidden_size;
  const size_t elem = static_cast<size_t>(DTypeSize(md));
  constexpr int kGrid = kScaleGridPoints;
  DeviceCapture& cap = ws->capture;
  MoeOperands w = MoeOperandsOf(ws->layer.moe, c, md);
  // Linear i's trials of one batch: [batch, out_i, cols] at first[i] (elements).
  std::vector<int64_t> first(linears.size() + 1, 0);
  std::vector<const void**> slot(linears.size());
  for (size_t i = 0; i < linears.size(); ++i) {
    slot[i] = OperandSlot(ws->layer.moe, linears[i], &w);
    if (slot[i] == nullptr) {
      return absl::InternalError(
          absl::StrCat(group.label, ": ", group.linears[i], " is not an expert's gate/up"));
    }
    first[i + 1] = first[i] + linears[i]->out * cols;
  }
  const size_t per_ratio = static_cast<size_t>(first.back()) * elem;
  const int batch = static_cast<int>(
      std::clamp<size_t>(kTrialBudgetBytes / per_ratio, 1, static_cast<size_t>(kGrid)));
  QUANTD_RETURN_IF_ERROR(Ensure(&ws->trial_a, batch * first.back(), elem));
  QUANTD_RETURN_IF_ERROR(Ensure(&ws->out, n * h, sizeof(float)));
  const void* x_op = md == DType::kF32 ? cap.mlp_input.as<void>() : cap.mlp_input_op.as<void>();
  const DType down_type = cap.down_input_type;
  for (int k0 = 0; k0 < kGrid; k0 += batch) {
    const int r = std::min(batch, kGrid - k0);
    for (size_t i = 0; i < linears.size(); ++i) {
      ScaleQuantizeUnscale(linears[i]->weight.f32(), s_dev + k0 * cols, r, linears[i]->out, cols,
                           gs, md, nullptr, nullptr,
                           ws->trial_a.as<char>() + static_cast<size_t>(batch * first[i]) * elem,
                           run.stream);
    }
    for (int j = 0; j < r; ++j) {
      for (size_t i = 0; i < linears.size(); ++i) {
        *slot[i] = ws->trial_a.as<char>() +
                   static_cast<size_t>(batch * first[i] + j * linears[i]->out * cols) * elem;
      }
      QUANTD_RETURN_IF_ERROR(MoeBlockForward(*run.gemm, geo, w, cap.moe.routing, x_op,
                                             cap.moe.routed_input.as<void>(), ws->out.f32(),
                                             nullptr, down_type, &ws->scratch, run.stream));
      AddSquaredError(cap.mlp_output.as<void>(), ws->out.as<void>(), DType::kF32, n * h, md,
                      losses + k0 + j, run.stream);
    }
  }
  return static_cast<double>(run.tokens) * static_cast<double>(h);
}

MoeLayerStats RoutingStats(const DeviceRouting& routing, int64_t min_tokens) {
  std::vector<int64_t> tokens;
  for (size_t e = 0; e + 1 < routing.offset.size(); ++e) tokens.push_back(routing.rows(e));
  return MoeStatsOf(std::move(tokens), min_tokens);
}

}  // namespace quantd::engine::cuda
