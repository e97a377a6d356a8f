// A scaling group as AutoAWQ's get_layers_for_scaling() describes one (spec/awq.md §2.5): plain
// data, by names relative to the decoder layer, so that each family's file lists its groups and
// the backends need no switch over families.
#ifndef QUANTD_ENGINE_MODEL_SCALING_GROUP_H_
#define QUANTD_ENGINE_MODEL_SCALING_GROUP_H_

#include <string>
#include <vector>

namespace quantd::engine {

// AutoAWQ's module2inspect: the module whose output error measures a grid point's loss.
enum class InspectedModule {
  kSelfAttention,  // the whole attention (q/k/v, q/k norms, RoPE, attention, o_proj)
  kMlp,            // the whole MLP (gate/up, activation, down)
  kLinear,         // the group's single Linear itself (module2inspect absent)
  kMoe,  // a sparse MoE block with its routing (router, every routed expert, shared expert)
};

struct ScalingGroup {
  // Scaled down: a norm (weight ÷ s; Gemma's 1 + w ÷ s) or a Linear (its last len(s) rows ÷ s).
  std::string prev_op;
  std::vector<std::string> linears;  // scaled up (columns × s); they share one input
  std::string input;                 // AutoAWQ's inp: the Linear whose captured input is read
  InspectedModule inspect = InspectedModule::kLinear;
  // Float Linears fed the same input (a MoE router, Qwen2-MoE's shared_expert_gate): their columns
  // are multiplied by s too, so their outputs are unchanged by scaling. They are never quantized.
  // AutoAWQ has no such field and leaves them out (awq/moe_groups in docs/moe.md).
  std::vector<std::string> float_consumers;
  std::string label;  // for reports: "prev_op->a+b", in the checkpoint's (fused) names
};

// A group labelled "prev_op->linears[0]+linears[1]+...".
ScalingGroup MakeScalingGroup(std::string prev_op, std::vector<std::string> linears,
                              InspectedModule inspect);

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_MODEL_SCALING_GROUP_H_
