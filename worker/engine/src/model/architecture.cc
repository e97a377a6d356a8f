#include "model/architecture.h"

#include "absl/strings/str_cat.h"
#include "model/layer_weights.h"

namespace quantd::engine {
namespace {

constexpr ArchitectureInfo kArchitectures[] = {
    {Architecture::kLlama, "LlamaForCausalLM", "llama", /*qkv_bias=*/false, /*qk_norm=*/false},
    {Architecture::kQwen2, "Qwen2ForCausalLM", "qwen2", /*qkv_bias=*/true, /*qk_norm=*/false},
    {Architecture::kMistral, "MistralForCausalLM", "mistral", /*qkv_bias=*/false,
     /*qk_norm=*/false},
    {Architecture::kQwen3, "Qwen3ForCausalLM", "qwen3", /*qkv_bias=*/false, /*qk_norm=*/true},
};

}  // namespace

absl::Span<const ArchitectureInfo> SupportedArchitectures() { return kArchitectures; }

const ArchitectureInfo* FindArchitecture(std::string_view hf_class) {
  for (const ArchitectureInfo& info : kArchitectures) {
    if (hf_class == info.hf_class) return &info;
  }
  return nullptr;
}

const ArchitectureInfo& InfoOf(Architecture architecture) {
  for (const ArchitectureInfo& info : kArchitectures) {
    if (info.architecture == architecture) return info;
  }
  return kArchitectures[0];
}

std::string SupportedArchitectureList() {
  std::string list;
  for (const ArchitectureInfo& info : kArchitectures) {
    absl::StrAppend(&list, list.empty() ? "" : ", ", info.hf_class);
  }
  return list;
}

std::string LayerTensorName(int layer, std::string_view suffix) {
  return absl::StrCat("model.layers.", layer, ".", std::string(suffix));
}

std::vector<int64_t> LinearOutFeatures(const ModelConfig& c) {
  int64_t q = int64_t{c.num_attention_heads} * c.head_dim;
  int64_t kv = int64_t{c.num_key_value_heads} * c.head_dim;
  return {q, kv, kv, c.hidden_size, c.intermediate_size, c.intermediate_size, c.hidden_size};
}

std::vector<int64_t> LinearInFeatures(const ModelConfig& c) {
  int64_t q = int64_t{c.num_attention_heads} * c.head_dim;
  return {c.hidden_size, c.hidden_size, c.hidden_size,      q,
          c.hidden_size, c.hidden_size, c.intermediate_size};
}

std::vector<TensorSpec> SourceLayerTensors(const ModelConfig& c, int layer) {
  std::vector<int64_t> out = LinearOutFeatures(c);
  std::vector<int64_t> in = LinearInFeatures(c);
  std::vector<TensorSpec> specs;
  for (size_t i = 0; i < 7; ++i) {
    std::string linear = kLayerLinearNames[i];
    specs.push_back({LayerTensorName(layer, linear + ".weight"), {out[i], in[i]}});
    if (c.attention_bias && i < 3) {
      specs.push_back({LayerTensorName(layer, linear + ".bias"), {out[i]}});
    }
    if (c.qk_norm && i == 3) {
      specs.push_back({LayerTensorName(layer, "self_attn.q_norm.weight"), {c.head_dim}});
      specs.push_back({LayerTensorName(layer, "self_attn.k_norm.weight"), {c.head_dim}});
    }
  }
  specs.push_back({LayerTensorName(layer, "input_layernorm.weight"), {c.hidden_size}});
  specs.push_back({LayerTensorName(layer, "post_attention_layernorm.weight"), {c.hidden_size}});
  return specs;
}

std::vector<TensorSpec> SourceGlobalTensors(const ModelConfig& c) {
  std::vector<TensorSpec> specs = {{kEmbedTokensName, {c.vocab_size, c.hidden_size}},
                                   {kFinalNormName, {c.hidden_size}}};
  if (!c.tie_word_embeddings) specs.push_back({kLmHeadName, {c.vocab_size, c.hidden_size}});
  return specs;
}

}  // namespace quantd::engine
