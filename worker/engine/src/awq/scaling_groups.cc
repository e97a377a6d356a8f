#include "awq/scaling_groups.h"

#include "awq/apply_scale.h"
#include "model/architecture.h"

namespace quantd::engine {

std::vector<ScalingGroup> ScalingGroupsOf(const ModelConfig& config) {
  return config.arch->scaling_groups(config);
}

std::vector<LinearWeights*> GroupLinears(const ScalingGroup& group, LayerWeights* layer) {
  std::vector<LinearWeights*> out;
  for (const std::string& name : group.linears) out.push_back(FindLinear(layer, name));
  return out;
}

std::vector<const LinearWeights*> GroupLinears(const ScalingGroup& group,
                                               const LayerWeights& layer) {
  std::vector<const LinearWeights*> out;
  for (const std::string& name : group.linears) out.push_back(FindLinear(layer, name));
  return out;
}

bool GroupScalesInputOf(const ScalingGroup& group, std::string_view linear) {
  for (const std::string& name : group.linears) {
    if (name == linear) return true;
  }
  return false;
}

void ApplyGroupScales(const ScalingGroup& group, const std::vector<float>& s, DType md,
                      NormKind norm, LayerWeights* layer) {
  if (LinearWeights* prev = FindLinear(layer, group.prev_op)) {
    DivideLinearRows(s, md, prev);
  } else if (norm == NormKind::kRmsOnePlusWeight) {
    DivideOnePlusNorm(s, md, FindFloatTensor(layer, group.prev_op));
  } else {
    DivideNorm(s, md, FindFloatTensor(layer, group.prev_op));
  }
  for (LinearWeights* l : GroupLinears(group, layer)) MultiplyColumns(s, md, &l->weight);
  for (const std::string& name : group.float_consumers) {
    MultiplyColumns(s, md, FindFloatTensor(layer, name));
  }
}

}  // namespace quantd::engine
