// One record per supported decoder architecture: everything that differs between them (the
// Hugging Face class name, q/k/v bias, q/k norms), so no other file needs a switch over
// architectures. The tensor names of the source checkpoint are derived from the record and the
// geometry of a ModelConfig.
#ifndef QUANTD_ENGINE_MODEL_ARCHITECTURE_H_
#define QUANTD_ENGINE_MODEL_ARCHITECTURE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/types/span.h"
#include "model/model_config.h"

namespace quantd::engine {

struct ArchitectureInfo {
  Architecture architecture;
  const char* hf_class;    // config.json "architectures"[0], e.g. "Qwen2ForCausalLM"
  const char* model_type;  // config.json "model_type", e.g. "qwen2"
  bool qkv_bias;           // q/k/v_proj always carry a bias
  bool qk_norm;            // self_attn.q_norm / k_norm (RMSNorm over head_dim)
};

// All supported architectures, in a fixed order.
absl::Span<const ArchitectureInfo> SupportedArchitectures();

// The record for a Hugging Face class name, or nullptr.
const ArchitectureInfo* FindArchitecture(std::string_view hf_class);
const ArchitectureInfo& InfoOf(Architecture architecture);

// "LlamaForCausalLM, Qwen2ForCausalLM, ..." for error messages.
std::string SupportedArchitectureList();

// A named tensor with its expected shape.
struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
};

// "model.layers.<layer>.<suffix>".
std::string LayerTensorName(int layer, std::string_view suffix);

// Output features of each of the seven Linears of kLayerLinearNames, in that order.
std::vector<int64_t> LinearOutFeatures(const ModelConfig& config);
std::vector<int64_t> LinearInFeatures(const ModelConfig& config);

// The float tensors one layer of the source checkpoint holds, in Hugging Face state-dict order.
std::vector<TensorSpec> SourceLayerTensors(const ModelConfig& config, int layer);

// Embedding, final norm and (untied models) lm_head.
std::vector<TensorSpec> SourceGlobalTensors(const ModelConfig& config);

inline constexpr char kEmbedTokensName[] = "model.embed_tokens.weight";
inline constexpr char kFinalNormName[] = "model.norm.weight";
inline constexpr char kLmHeadName[] = "lm_head.weight";

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_MODEL_ARCHITECTURE_H_
