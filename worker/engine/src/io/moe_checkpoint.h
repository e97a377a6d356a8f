// A sparse MoE layer's experts in either layout real checkpoints come in: the Hub's per-expert
// Linears (`mlp.experts.E.gate_proj.weight`, Mixtral `block_sparse_moe.experts.E.w1.weight`) —
// what the family records describe — or transformers 5.x's fused 3-D parameters
// (`mlp.experts.gate_up_proj` [E, 2·I, hidden], gate rows first; `mlp.experts.down_proj`
// [E, hidden, I]; the router `mlp.gate` for every family). Either way the engine gets one
// LinearWeights per expert and projection, and writes per-expert tensors.
#ifndef QUANTD_ENGINE_IO_MOE_CHECKPOINT_H_
#define QUANTD_ENGINE_IO_MOE_CHECKPOINT_H_

#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "model/architecture.h"
#include "model/layer_weights.h"
#include "model/model_config.h"

namespace quantd::engine {

class CheckpointReader;

enum class ExpertLayout { kPerExpert, kFused };

// transformers 5.x names, relative to the layer.
inline constexpr char kFusedGateUpName[] = "mlp.experts.gate_up_proj";
inline constexpr char kFusedDownName[] = "mlp.experts.down_proj";
inline constexpr char kFusedRouterName[] = "mlp.gate";

// The layout of layer `layer`'s experts (kPerExpert for dense models); InvalidArgument naming both
// tensors looked for when a MoE checkpoint has neither.
absl::StatusOr<ExpertLayout> FindExpertLayout(const CheckpointReader& reader,
                                              const ModelConfig& config, int layer);

// Whether a tensor of the family's layout (LayerTensorSpec name) comes from the fused parameters
// in the fused layout: the routed experts' Linears and the router.
bool FromFusedExperts(const ModelConfig& config, std::string_view name);

// The fused layout's source tensors of layer `layer`, with full names and shapes.
std::vector<TensorSpec> FusedExpertTensors(const ModelConfig& config, int layer);

// Reads layer `layer`'s router from the fused parameters into `w`, and points its experts'
// Linears at their slices of them (LinearWeights::source).
absl::Status LoadFusedExperts(const CheckpointReader& reader, const ModelConfig& config, int layer,
                              LayerWeights* w);

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_IO_MOE_CHECKPOINT_H_
