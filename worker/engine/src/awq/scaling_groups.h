// AutoAWQ's scaling groups of a Llama / Qwen2 / Qwen3 / Mistral decoder layer (spec/awq.md §2.5),
// and the in-place operations that fold a group's chosen scales into the layer (§4).
#ifndef QUANTD_ENGINE_AWQ_SCALING_GROUPS_H_
#define QUANTD_ENGINE_AWQ_SCALING_GROUPS_H_

#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/tensor.h"
#include "model/layer_weights.h"

namespace quantd::engine {

enum class ScalingGroupKind {
  kAttentionInput,  // input_layernorm → q, k, v; loss on self_attn
  kValueOutput,     // v_proj → o_proj; loss on o_proj (MHA only)
  kMlpInput,        // post_attention_layernorm → gate, up; loss on mlp
  kMlpDown,         // up_proj → down_proj; loss on down_proj
};

struct ScalingGroup {
  ScalingGroupKind kind;
  std::string prev_op;               // e.g. "input_layernorm"
  std::vector<std::string> linears;  // e.g. {"self_attn.q_proj", ...}
};

// The groups in AutoAWQ's order; kValueOutput only when v_proj and o_proj weights have the same
// shape.
std::vector<ScalingGroup> ScalingGroupsOf(const LayerWeights& layer);

// The Linears a group scales up, in order.
std::vector<LinearWeights*> GroupLinears(ScalingGroupKind kind, LayerWeights* layer);
std::vector<const LinearWeights*> GroupLinears(ScalingGroupKind kind, const LayerWeights& layer);

// Folds s into the group's previous op (norm ÷ s or Linear rows ÷ s) and its Linears (columns × s).
void ApplyGroupScales(ScalingGroupKind kind, const std::vector<float>& s, DType md,
                      LayerWeights* layer);

// Whether the group's inspected module is its single Linear (o_proj, down_proj): its loss is a
// quadratic form in the Gram matrix of the inputs, with no module forward.
inline bool IsGramGroup(ScalingGroupKind kind) {
  return kind == ScalingGroupKind::kValueOutput || kind == ScalingGroupKind::kMlpDown;
}

// "input_layernorm+..." style label "prev→a+b" used in reports.
std::string GroupLabel(const ScalingGroup& group);

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_AWQ_SCALING_GROUPS_H_
