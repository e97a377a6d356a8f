#include "model/layer_weights.h"

#include "model/moe_layout.h"

namespace quantd::engine {

LinearWeights* FindLinear(LayerWeights* w, std::string_view name) {
  struct Slot {
    const char* name;
    LinearWeights LayerWeights::*member;
  };
  static constexpr Slot kSlots[] = {
      {kQProj, &LayerWeights::q_proj},       {kKProj, &LayerWeights::k_proj},
      {kVProj, &LayerWeights::v_proj},       {kOProj, &LayerWeights::o_proj},
      {kGateProj, &LayerWeights::gate_proj}, {kUpProj, &LayerWeights::up_proj},
      {kDownProj, &LayerWeights::down_proj}};
  for (const Slot& s : kSlots) {
    if (name == s.name) return &(w->*s.member);
  }
  if (!IsMoeTensorName(name)) return nullptr;
  if (!w->moe.has_value()) w->moe.emplace();
  return FindMoeLinear(&*w->moe, name);
}

const LinearWeights* FindLinear(const LayerWeights& w, std::string_view name) {
  if (IsMoeTensorName(name)) return w.moe.has_value() ? FindMoeLinear(*w.moe, name) : nullptr;
  return FindLinear(const_cast<LayerWeights*>(&w), name);
}

namespace {

struct OptionalSlot {
  const char* name;
  std::optional<Tensor> LayerWeights::*member;
};
constexpr OptionalSlot kOptionalTensors[] = {
    {kQNorm, &LayerWeights::q_norm},
    {kKNorm, &LayerWeights::k_norm},
    {kPreFeedforwardNorm, &LayerWeights::pre_feedforward_layernorm},
    {kPostFeedforwardNorm, &LayerWeights::post_feedforward_layernorm}};

}  // namespace

Tensor* FindFloatTensor(LayerWeights* w, std::string_view name) {
  if (name == kInputNorm) return &w->input_layernorm;
  if (name == kPostAttentionNorm) return &w->post_attention_layernorm;
  for (const OptionalSlot& s : kOptionalTensors) {
    if (name != s.name) continue;
    std::optional<Tensor>& t = w->*s.member;
    if (!t.has_value()) t.emplace();
    return &*t;
  }
  if (!IsMoeTensorName(name)) return nullptr;
  if (!w->moe.has_value()) w->moe.emplace();
  return FindMoeFloatTensor(&*w->moe, name);
}

const Tensor* FindFloatTensor(const LayerWeights& w, std::string_view name) {
  if (name == kInputNorm) return &w.input_layernorm;
  if (name == kPostAttentionNorm) return &w.post_attention_layernorm;
  for (const OptionalSlot& s : kOptionalTensors) {
    if (name == s.name) return (w.*s.member).has_value() ? &*(w.*s.member) : nullptr;
  }
  if (w.moe.has_value()) return FindMoeFloatTensor(*w.moe, name);
  return nullptr;
}

void ForEachLinear(LayerWeights* w, const std::function<void(LinearWeights&)>& fn) {
  auto expert = [&](ExpertWeights& e) {
    fn(e.gate_proj);
    fn(e.up_proj);
    fn(e.down_proj);
  };
  for (LinearWeights* l : {&w->q_proj, &w->k_proj, &w->v_proj, &w->o_proj, &w->gate_proj,
                           &w->up_proj, &w->down_proj}) {
    fn(*l);
  }
  if (w->moe.has_value()) {
    fn(w->moe->router);
    for (ExpertWeights& e : w->moe->experts) expert(e);
    if (w->moe->shared_expert.has_value()) expert(*w->moe->shared_expert);
    if (w->moe->shared_expert_gate.has_value()) fn(*w->moe->shared_expert_gate);
  }
}

void ReleaseLinearWeights(LayerWeights* w) {
  ForEachLinear(w, [](LinearWeights& l) {
    std::vector<float>().swap(l.weight.data);
    if (l.bias.has_value()) std::vector<float>().swap(l.bias->data);
    l.source.reset();
  });
  w->host_lease.reset();
}

}  // namespace quantd::engine
