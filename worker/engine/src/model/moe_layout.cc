#include "model/moe_layout.h"

#include <charconv>

#include "absl/strings/str_cat.h"
#include "model/families/llama_layout.h"

namespace quantd::engine {
namespace {

const char* ProjName(MoeStyle style, ExpertProj proj) {
  const bool mixtral = style == MoeStyle::kMixtral;
  switch (proj) {
    case ExpertProj::kGate:
      return mixtral ? "w1" : "gate_proj";
    case ExpertProj::kUp:
      return mixtral ? "w3" : "up_proj";
    case ExpertProj::kDown:
      return mixtral ? "w2" : "down_proj";
  }
  return "";
}

// Hugging Face registration order of an expert's Linears (MixtralBlockSparseTop2MLP: w1, w2, w3).
std::vector<ExpertProj> ExpertStateDictOrder(MoeStyle style) {
  if (style == MoeStyle::kMixtral) return {ExpertProj::kGate, ExpertProj::kDown, ExpertProj::kUp};
  return {ExpertProj::kGate, ExpertProj::kUp, ExpertProj::kDown};
}

LinearWeights* ProjOf(ExpertWeights* e, std::string_view proj) {
  if (proj == "gate_proj" || proj == "w1") return &e->gate_proj;
  if (proj == "up_proj" || proj == "w3") return &e->up_proj;
  if (proj == "down_proj" || proj == "w2") return &e->down_proj;
  return nullptr;
}

// `name` without the block prefix, or nullopt.
std::optional<std::string_view> InBlock(std::string_view name) {
  for (std::string_view prefix : {"mlp.", "block_sparse_moe."}) {
    if (name.substr(0, prefix.size()) == prefix) return name.substr(prefix.size());
  }
  return std::nullopt;
}

// "experts.E.proj" → (E, proj).
std::optional<std::pair<int, std::string_view>> ParseExpert(std::string_view rest) {
  constexpr std::string_view kExperts = "experts.";
  if (rest.substr(0, kExperts.size()) != kExperts) return std::nullopt;
  rest.remove_prefix(kExperts.size());
  const size_t dot = rest.find('.');
  if (dot == std::string_view::npos || dot == 0) return std::nullopt;
  int e = -1;
  auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + dot, e);
  if (ec != std::errc() || ptr != rest.data() + dot || e < 0) return std::nullopt;
  return std::make_pair(e, rest.substr(dot + 1));
}

}  // namespace

std::string MoeBlockName(MoeStyle style) {
  return style == MoeStyle::kMixtral ? "block_sparse_moe" : "mlp";
}

std::string RouterName(MoeStyle style) { return MoeBlockName(style) + ".gate"; }

std::string ExpertLinearName(MoeStyle style, int expert, ExpertProj proj) {
  return absl::StrCat(MoeBlockName(style), ".experts.", expert, ".", ProjName(style, proj));
}

std::string SharedExpertLinearName(ExpertProj proj) {
  return absl::StrCat("mlp.shared_expert.", ProjName(MoeStyle::kQwen2, proj));
}

std::optional<int> ExpertOfLinear(std::string_view name) {
  std::optional<std::string_view> rest = InBlock(name);
  if (!rest.has_value()) return std::nullopt;
  auto e = ParseExpert(*rest);
  if (!e.has_value()) return std::nullopt;
  return e->first;
}

bool IsExpertDownProjection(std::string_view name) {
  auto ends = [&](std::string_view suffix) {
    return name.size() >= suffix.size() && name.substr(name.size() - suffix.size()) == suffix;
  };
  return ends(".down_proj") || ends(".w2");
}

std::vector<LayerTensorSpec> MoeLayerTensors(const ModelConfig& c) {
  const MoeConfig& m = c.moe;
  const int64_t h = c.hidden_size;
  std::vector<LayerTensorSpec> block = {
      {RouterName(m.style), {m.num_experts, h}, false, false, {}}};
  auto expert = [&](auto name_of, int64_t inter) {
    for (ExpertProj p : ExpertStateDictOrder(m.style)) {
      const bool down = p == ExpertProj::kDown;
      block.push_back({name_of(p), {down ? h : inter, down ? inter : h}, true, false, {}});
    }
  };
  for (int e = 0; e < m.num_experts; ++e) {
    expert([&](ExpertProj p) { return ExpertLinearName(m.style, e, p); },
           m.expert_intermediate_size);
  }
  if (m.has_shared_expert()) {
    expert([](ExpertProj p) { return SharedExpertLinearName(p); },
           m.shared_expert_intermediate_size);
    block.push_back({kSharedExpertGateName, {1, h}, false, false, {}});
  }
  // The Llama layout with the block in the dense MLP's place.
  std::vector<LayerTensorSpec> out;
  for (LayerTensorSpec& t : LlamaLayerTensors(c)) {
    if (t.name == kGateProj) out.insert(out.end(), block.begin(), block.end());
    if (t.name == kGateProj || t.name == kUpProj || t.name == kDownProj) continue;
    out.push_back(std::move(t));
  }
  return out;
}

std::vector<ScalingGroup> MoeScalingGroups(const ModelConfig& c) {
  const MoeConfig& m = c.moe;
  std::vector<ScalingGroup> g;
  for (ScalingGroup& dense : PostAttentionNormGroups(c)) {
    if (dense.inspect == InspectedModule::kMlp || dense.linears[0] == kDownProj) continue;
    g.push_back(std::move(dense));
  }
  ScalingGroup in;
  in.prev_op = kPostAttentionNorm;
  for (int e = 0; e < m.num_experts; ++e) {
    in.linears.push_back(ExpertLinearName(m.style, e, ExpertProj::kGate));
    in.linears.push_back(ExpertLinearName(m.style, e, ExpertProj::kUp));
  }
  const std::string any = MoeBlockName(m.style) + ".experts.*.";
  in.label = absl::StrCat(kPostAttentionNorm, "->", any, ProjName(m.style, ExpertProj::kGate), "+",
                          any, ProjName(m.style, ExpertProj::kUp));
  if (m.has_shared_expert()) {
    for (ExpertProj p : {ExpertProj::kGate, ExpertProj::kUp}) {
      in.linears.push_back(SharedExpertLinearName(p));
      absl::StrAppend(&in.label, "+", SharedExpertLinearName(p));
    }
  }
  in.input = RouterName(m.style);  // the block's input, every token
  in.inspect = InspectedModule::kMoe;
  in.float_consumers = {RouterName(m.style)};
  if (m.has_shared_expert()) in.float_consumers.push_back(kSharedExpertGateName);
  g.push_back(std::move(in));
  for (int e = 0; e < m.num_experts; ++e) {
    g.push_back(MakeScalingGroup(ExpertLinearName(m.style, e, ExpertProj::kUp),
                                 {ExpertLinearName(m.style, e, ExpertProj::kDown)},
                                 InspectedModule::kLinear));
  }
  if (m.has_shared_expert()) {
    g.push_back(MakeScalingGroup(SharedExpertLinearName(ExpertProj::kUp),
                                 {SharedExpertLinearName(ExpertProj::kDown)},
                                 InspectedModule::kLinear));
  }
  return g;
}

std::vector<std::string> MoeUnquantizedModules(const ModelConfig& c) {
  std::vector<std::string> out;
  if (!c.moe.enabled()) return out;
  for (int layer = 0; layer < c.num_hidden_layers; ++layer) {
    out.push_back(LayerTensorName(layer, RouterName(c.moe.style)));
    if (c.moe.has_shared_expert()) out.push_back(LayerTensorName(layer, kSharedExpertGateName));
  }
  return out;
}

bool IsMoeTensorName(std::string_view name) {
  std::optional<std::string_view> rest = InBlock(name);
  if (!rest.has_value()) return false;
  return ParseExpert(*rest).has_value() || *rest == "gate" || *rest == "shared_expert_gate" ||
         rest->substr(0, 14) == "shared_expert.";
}

LinearWeights* FindMoeLinear(MoeWeights* m, std::string_view name) {
  std::optional<std::string_view> rest = InBlock(name);
  if (!rest.has_value()) return nullptr;
  if (auto e = ParseExpert(*rest)) {
    if (m->experts.size() <= static_cast<size_t>(e->first)) {
      m->experts.resize(static_cast<size_t>(e->first) + 1);
    }
    return ProjOf(&m->experts[static_cast<size_t>(e->first)], e->second);
  }
  constexpr std::string_view kShared = "shared_expert.";
  if (rest->substr(0, kShared.size()) == kShared) {
    if (!m->shared_expert.has_value()) m->shared_expert.emplace();
    return ProjOf(&*m->shared_expert, rest->substr(kShared.size()));
  }
  return nullptr;
}

const LinearWeights* FindMoeLinear(const MoeWeights& m, std::string_view name) {
  std::optional<std::string_view> rest = InBlock(name);
  if (!rest.has_value()) return nullptr;
  if (auto e = ParseExpert(*rest)) {
    if (m.experts.size() <= static_cast<size_t>(e->first)) return nullptr;
    return ProjOf(const_cast<ExpertWeights*>(&m.experts[static_cast<size_t>(e->first)]), e->second);
  }
  constexpr std::string_view kShared = "shared_expert.";
  if (rest->substr(0, kShared.size()) == kShared && m.shared_expert.has_value()) {
    return ProjOf(const_cast<ExpertWeights*>(&*m.shared_expert), rest->substr(kShared.size()));
  }
  return nullptr;
}

Tensor* FindMoeFloatTensor(MoeWeights* m, std::string_view name) {
  std::optional<std::string_view> rest = InBlock(name);
  if (!rest.has_value()) return nullptr;
  if (*rest == "gate") return &m->router.weight;
  if (*rest == "shared_expert_gate") {
    if (!m->shared_expert_gate.has_value()) m->shared_expert_gate.emplace();
    return &m->shared_expert_gate->weight;
  }
  return nullptr;
}

const Tensor* FindMoeFloatTensor(const MoeWeights& m, std::string_view name) {
  std::optional<std::string_view> rest = InBlock(name);
  if (!rest.has_value()) return nullptr;
  if (*rest == "gate") return &m.router.weight;
  if (*rest == "shared_expert_gate" && m.shared_expert_gate.has_value()) {
    return &m.shared_expert_gate->weight;
  }
  return nullptr;
}

}  // namespace quantd::engine
