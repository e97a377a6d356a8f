#include "awq/scaling_groups.h"

#include "absl/strings/str_join.h"
#include "awq/apply_scale.h"

namespace quantd::engine {

std::vector<ScalingGroup> ScalingGroupsOf(const LayerWeights& layer) {
  std::vector<ScalingGroup> groups;
  groups.push_back({ScalingGroupKind::kAttentionInput,
                    "input_layernorm",
                    {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"}});
  if (layer.v_proj.weight.shape == layer.o_proj.weight.shape) {
    groups.push_back({ScalingGroupKind::kValueOutput, "self_attn.v_proj", {"self_attn.o_proj"}});
  }
  groups.push_back(
      {ScalingGroupKind::kMlpInput, "post_attention_layernorm", {"mlp.gate_proj", "mlp.up_proj"}});
  groups.push_back({ScalingGroupKind::kMlpDown, "mlp.up_proj", {"mlp.down_proj"}});
  return groups;
}

std::vector<LinearWeights*> GroupLinears(ScalingGroupKind kind, LayerWeights* layer) {
  switch (kind) {
    case ScalingGroupKind::kAttentionInput:
      return {&layer->q_proj, &layer->k_proj, &layer->v_proj};
    case ScalingGroupKind::kValueOutput:
      return {&layer->o_proj};
    case ScalingGroupKind::kMlpInput:
      return {&layer->gate_proj, &layer->up_proj};
    case ScalingGroupKind::kMlpDown:
      return {&layer->down_proj};
  }
  return {};
}

std::vector<const LinearWeights*> GroupLinears(ScalingGroupKind kind, const LayerWeights& layer) {
  std::vector<const LinearWeights*> out;
  for (LinearWeights* l : GroupLinears(kind, const_cast<LayerWeights*>(&layer))) out.push_back(l);
  return out;
}

void ApplyGroupScales(ScalingGroupKind kind, const std::vector<float>& s, DType md,
                      LayerWeights* layer) {
  switch (kind) {
    case ScalingGroupKind::kAttentionInput:
      DivideNorm(s, md, &layer->input_layernorm);
      break;
    case ScalingGroupKind::kValueOutput:
      DivideLinearRows(s, md, &layer->v_proj);
      break;
    case ScalingGroupKind::kMlpInput:
      DivideNorm(s, md, &layer->post_attention_layernorm);
      break;
    case ScalingGroupKind::kMlpDown:
      DivideLinearRows(s, md, &layer->up_proj);
      break;
  }
  for (LinearWeights* l : GroupLinears(kind, layer)) MultiplyColumns(s, md, &l->weight);
}

std::string GroupLabel(const ScalingGroup& group) {
  return group.prev_op + "->" + absl::StrJoin(group.linears, "+");
}

}  // namespace quantd::engine
