// Resolving a layer's scaling groups (model/scaling_group.h, listed per family by its record) to
// its weights, and folding a group's chosen scales into the layer (spec/awq.md §4).
#ifndef QUANTD_ENGINE_AWQ_SCALING_GROUPS_H_
#define QUANTD_ENGINE_AWQ_SCALING_GROUPS_H_

#include <vector>

#include "core/dtype.h"
#include "model/layer_weights.h"
#include "model/model_config.h"
#include "model/scaling_group.h"

namespace quantd::engine {

// The family's groups in AutoAWQ's order (config.arch->scaling_groups).
std::vector<ScalingGroup> ScalingGroupsOf(const ModelConfig& config);

// The Linears a group scales up, in order.
std::vector<LinearWeights*> GroupLinears(const ScalingGroup& group, LayerWeights* layer);
std::vector<const LinearWeights*> GroupLinears(const ScalingGroup& group,
                                               const LayerWeights& layer);

// Whether `linear` is one of the group's Linears (its input is divided by the group's scales).
bool GroupScalesInputOf(const ScalingGroup& group, std::string_view linear);

// Folds s into the group's previous op (a norm: weight ÷ s, or (1 + weight) ÷ s − 1 for Gemma's
// norms; a Linear: its last len(s) rows ÷ s), its Linears and its float consumers (columns × s).
void ApplyGroupScales(const ScalingGroup& group, const std::vector<float>& s, DType md,
                      NormKind norm, LayerWeights* layer);

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_AWQ_SCALING_GROUPS_H_
