#include "io/moe_checkpoint.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "core/parallel_for.h"
#include "io/checkpoint_reader.h"
#include "io/status_macros.h"
#include "model/moe_layout.h"

namespace quantd::engine {
namespace {

// Expert `e`'s rows [first, first + rows) of a fused [E, R, C] parameter as a [rows, C] weight.
Tensor FusedSlice(const SafetensorsFile& file, const SafetensorsEntry& entry, int64_t e,
                  int64_t first, int64_t rows) {
  const int64_t r = entry.shape[1], c = entry.shape[2];
  const auto width = static_cast<size_t>(DTypeSize(entry.dtype));
  const absl::Span<const uint8_t> bytes = file.Bytes(entry);
  Tensor t({rows, c});
  const absl::Span<const uint8_t> slice = bytes.subspan(
      static_cast<size_t>((e * r + first) * c) * width, static_cast<size_t>(rows * c) * width);
  file.ConvertReleasing(entry.dtype, slice, t.ptr());
  return t;
}

}  // namespace

absl::StatusOr<ExpertLayout> FindExpertLayout(const CheckpointReader& reader,
                                              const ModelConfig& config, int layer) {
  if (!config.moe.enabled()) return ExpertLayout::kPerExpert;
  const std::string per_expert =
      LayerTensorName(layer, ExpertLinearName(config.moe.style, 0, ExpertProj::kGate) + ".weight");
  if (reader.Find(per_expert) != nullptr) return ExpertLayout::kPerExpert;
  const std::string fused = LayerTensorName(layer, kFusedGateUpName);
  if (reader.Find(fused) != nullptr) return ExpertLayout::kFused;
  return absl::InvalidArgumentError(
      absl::StrCat("layer ", layer, " of ", config.architecture_name,
                   " is a sparse MoE layer but the checkpoint has neither per-expert tensors (\"",
                   per_expert, "\", ...) nor transformers 5 fused ones (\"", fused, "\")"));
}

bool FromFusedExperts(const ModelConfig& config, std::string_view name) {
  return ExpertOfLinear(name).has_value() || name == RouterName(config.moe.style);
}

std::vector<TensorSpec> FusedExpertTensors(const ModelConfig& c, int layer) {
  const int64_t e = c.moe.num_experts, inter = c.moe.expert_intermediate_size, h = c.hidden_size;
  return {{LayerTensorName(layer, absl::StrCat(kFusedRouterName, ".weight")), {e, h}},
          {LayerTensorName(layer, kFusedGateUpName), {e, 2 * inter, h}},
          {LayerTensorName(layer, kFusedDownName), {e, h, inter}}};
}

absl::Status LoadFusedExperts(const CheckpointReader& reader, const ModelConfig& c, int layer,
                              LayerWeights* w) {
  const MoeStyle style = c.moe.style;
  const std::vector<TensorSpec> specs = FusedExpertTensors(c, layer);
  QUANTD_ASSIGN_OR_RETURN(*FindFloatTensor(w, RouterName(style)), reader.ReadFloat(specs[0].name));
  const SafetensorsFile *gu_file = nullptr, *down_file = nullptr;
  const SafetensorsEntry *gu = nullptr, *down = nullptr;
  QUANTD_RETURN_IF_ERROR(reader.CheckTensor(specs[1], &gu_file, &gu));
  QUANTD_RETURN_IF_ERROR(reader.CheckTensor(specs[2], &down_file, &down));
  const int64_t inter = c.moe.expert_intermediate_size;
  // Every expert's three slices in parallel (LoadLayer's reason); each drops its source pages.
  std::vector<LinearWeights*> slots;
  for (int e = 0; e < c.moe.num_experts; ++e) {
    for (ExpertProj p : {ExpertProj::kGate, ExpertProj::kUp, ExpertProj::kDown}) {
      slots.push_back(FindLinear(w, ExpertLinearName(style, e, p)));
    }
  }
  ParallelFor(static_cast<int64_t>(slots.size()), LayerReadThreads(), [&](int64_t i) {
    const int64_t e = i / 3;
    switch (i % 3) {
      case 0:  // gate rows first
        slots[static_cast<size_t>(i)]->weight = FusedSlice(*gu_file, *gu, e, 0, inter);
        break;
      case 1:
        slots[static_cast<size_t>(i)]->weight = FusedSlice(*gu_file, *gu, e, inter, inter);
        break;
      default:
        slots[static_cast<size_t>(i)]->weight = FusedSlice(*down_file, *down, e, 0, c.hidden_size);
    }
  });
  return absl::OkStatus();
}

}  // namespace quantd::engine
