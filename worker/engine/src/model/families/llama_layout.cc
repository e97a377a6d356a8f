#include "model/families/llama_layout.h"

#include "model/layer_weights.h"

namespace quantd::engine {

std::vector<LayerTensorSpec> LlamaLayerTensors(const ModelConfig& c) {
  const int64_t h = c.hidden_size;
  const int64_t q = int64_t{c.num_attention_heads} * c.head_dim;
  const int64_t kv = int64_t{c.num_key_value_heads} * c.head_dim;
  const int64_t im = c.intermediate_size;
  const bool b = c.attention_bias;
  std::vector<LayerTensorSpec> t = {{kQProj, {q, h}, true, b, {}},
                                    {kKProj, {kv, h}, true, b, {}},
                                    {kVProj, {kv, h}, true, b, {}},
                                    {kOProj, {h, q}, true, false, {}}};
  if (c.qk_norm) {
    t.push_back({kQNorm, {c.head_dim}, false, false, {}});
    t.push_back({kKNorm, {c.head_dim}, false, false, {}});
  }
  t.push_back({kGateProj, {im, h}, true, false, {}});
  t.push_back({kUpProj, {im, h}, true, false, {}});
  t.push_back({kDownProj, {h, im}, true, false, {}});
  t.push_back({kInputNorm, {h}, false, false, {}});
  t.push_back({kPostAttentionNorm, {h}, false, false, {}});
  if (c.sandwich_norms) {
    t.push_back({kPreFeedforwardNorm, {h}, false, false, {}});
    t.push_back({kPostFeedforwardNorm, {h}, false, false, {}});
  }
  return t;
}

bool ValueOutputGroupApplies(const ModelConfig& c) {
  const int64_t kv = int64_t{c.num_key_value_heads} * c.head_dim;
  const int64_t q = int64_t{c.num_attention_heads} * c.head_dim;
  return kv == c.hidden_size && q == c.hidden_size;
}

std::vector<ScalingGroup> LlamaScalingGroups(const ModelConfig& c, const char* mlp_norm) {
  std::vector<ScalingGroup> g;
  g.push_back(
      MakeScalingGroup(kInputNorm, {kQProj, kKProj, kVProj}, InspectedModule::kSelfAttention));
  if (ValueOutputGroupApplies(c)) {
    g.push_back(MakeScalingGroup(kVProj, {kOProj}, InspectedModule::kLinear));
  }
  g.push_back(MakeScalingGroup(mlp_norm, {kGateProj, kUpProj}, InspectedModule::kMlp));
  g.push_back(MakeScalingGroup(kUpProj, {kDownProj}, InspectedModule::kLinear));
  return g;
}

std::vector<ScalingGroup> PostAttentionNormGroups(const ModelConfig& c) {
  return LlamaScalingGroups(c, kPostAttentionNorm);
}

std::vector<ScalingGroup> PreFeedforwardNormGroups(const ModelConfig& c) {
  return LlamaScalingGroups(c, kPreFeedforwardNorm);
}

}  // namespace quantd::engine
