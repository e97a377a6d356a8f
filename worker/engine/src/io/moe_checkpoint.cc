#include "io/moe_checkpoint.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "io/checkpoint_reader.h"
#include "io/status_macros.h"
#include "model/moe_layout.h"

namespace quantd::engine {
namespace {

// Expert `e`'s rows [first, first + rows) of a fused [E, R, C] parameter (`all`, the whole
// tensor) as a [rows, C] weight left in the checkpoint.
void FusedSlice(const SourceValues& all, const std::vector<int64_t>& shape, int64_t e,
                int64_t first, int64_t rows, LinearWeights* out) {
  const int64_t r = shape[1], c = shape[2];
  const int64_t at = (e * r + first) * c;
  out->weight.shape = {rows, c};
  out->source = all;
  out->source->bytes += static_cast<size_t>(at) * static_cast<size_t>(DTypeSize(all.dtype));
  out->source->first = at;
  out->source->count = rows * c;
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
  QUANTD_ASSIGN_OR_RETURN(const SourceValues gate_up, reader.Source(specs[1]));
  QUANTD_ASSIGN_OR_RETURN(const SourceValues down, reader.Source(specs[2]));
  const int64_t inter = c.moe.expert_intermediate_size;
  for (int e = 0; e < c.moe.num_experts; ++e) {
    FusedSlice(gate_up, specs[1].shape, e, 0, inter,  // gate rows first
               FindLinear(w, ExpertLinearName(style, e, ExpertProj::kGate)));
    FusedSlice(gate_up, specs[1].shape, e, inter, inter,
               FindLinear(w, ExpertLinearName(style, e, ExpertProj::kUp)));
    FusedSlice(down, specs[2].shape, e, 0, c.hidden_size,
               FindLinear(w, ExpertLinearName(style, e, ExpertProj::kDown)));
  }
  return absl::OkStatus();
}

}  // namespace quantd::engine
