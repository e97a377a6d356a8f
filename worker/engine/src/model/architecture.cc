#include "model/architecture.h"

#include "absl/strings/str_cat.h"

namespace quantd::engine {

std::vector<LinearSpec> LayerLinears(const ModelConfig& c) {
  std::vector<LinearSpec> out;
  for (const LayerTensorSpec& t : c.arch->layer_tensors(c)) {
    if (!t.linear) continue;
    const bool clip = AutoAwqClips(t.name);
    if (t.parts.empty()) {
      out.push_back({t.name, t.name, t.shape[0], t.shape[1], t.bias, clip});
      continue;
    }
    for (const LinearPart& p : t.parts) {
      out.push_back({p.name, t.name, p.rows, t.shape[1], t.bias, clip});
    }
  }
  return out;
}

std::vector<LayerTensorSpec> LayerFloatTensors(const ModelConfig& c) {
  std::vector<LayerTensorSpec> out;
  for (LayerTensorSpec& t : c.arch->layer_tensors(c)) {
    if (!t.linear) out.push_back(std::move(t));
  }
  return out;
}

std::vector<NamedTensor> TakeFloatTensors(const ModelConfig& c, LayerWeights* layer) {
  std::vector<NamedTensor> out;
  for (const LayerTensorSpec& t : LayerFloatTensors(c)) {
    out.push_back({t.name, std::move(*FindFloatTensor(layer, t.name))});
  }
  return out;
}

bool AutoAwqClips(std::string_view name) {
  for (std::string_view avoid : {"q_", "k_", "query", "key", "Wqkv"}) {
    if (name.find(avoid) != std::string_view::npos) return false;
  }
  return true;
}

std::string LayerTensorName(int layer, std::string_view suffix) {
  return absl::StrCat("model.layers.", layer, ".", std::string(suffix));
}

std::vector<TensorSpec> SourceLayerTensors(const ModelConfig& c, int layer) {
  std::vector<TensorSpec> specs;
  for (const LayerTensorSpec& t : c.arch->layer_tensors(c)) {
    specs.push_back({LayerTensorName(layer, t.name + ".weight"), t.shape});
    if (t.bias) specs.push_back({LayerTensorName(layer, t.name + ".bias"), {t.shape[0]}});
  }
  return specs;
}

std::vector<TensorSpec> SourceGlobalTensors(const ModelConfig& c) {
  std::vector<TensorSpec> specs = {{kEmbedTokensName, {c.vocab_size, c.hidden_size}},
                                   {kFinalNormName, {c.hidden_size}}};
  if (!c.tie_word_embeddings) specs.push_back({kLmHeadName, {c.vocab_size, c.hidden_size}});
  return specs;
}

}  // namespace quantd::engine
