// ModelConfig: what the engine needs from a model's config.json, parsed from both styles real
// checkpoints use (transformers 4.x: rope_theta, rope_scaling, torch_dtype; 5.x: rope_parameters,
// dtype). The raw JSON is kept so the exported config.json preserves every field.
#ifndef QUANTD_ENGINE_MODEL_MODEL_CONFIG_H_
#define QUANTD_ENGINE_MODEL_MODEL_CONFIG_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "core/dtype.h"
#include "nlohmann/json.hpp"

namespace quantd::engine {

// Supported decoder architectures; all share AutoAWQ's four scaling groups.
enum class Architecture {
  kLlama,    // LlamaForCausalLM
  kQwen2,    // Qwen2ForCausalLM: q/k/v bias
  kMistral,  // MistralForCausalLM
  kQwen3,    // Qwen3ForCausalLM: q_norm / k_norm (RMSNorm over head_dim) before RoPE
};

struct RopeScaling {
  enum class Type { kDefault, kLinear, kLlama3 };
  Type type = Type::kDefault;
  double factor = 1.0;
  // llama3 only.
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int original_max_position_embeddings = 8192;
};

struct ModelConfig {
  Architecture architecture = Architecture::kLlama;
  std::string architecture_name;  // e.g. "Qwen2ForCausalLM"
  int hidden_size = 0;
  int intermediate_size = 0;
  int num_hidden_layers = 0;
  int num_attention_heads = 0;
  int num_key_value_heads = 0;
  int head_dim = 0;  // config's head_dim, else hidden_size / num_attention_heads
  int vocab_size = 0;
  int max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // q/k/v have bias (Qwen2, or Llama with attention_bias: true)
  bool qk_norm = false;         // Qwen3
  DType dtype = DType::kF16;    // torch_dtype / dtype: the "MD" AutoAWQ computes in
  int sliding_window = 0;       // Mistral's attention window; 0 = full attention
  nlohmann::json raw;           // The whole config.json as read.
};

// Parses a config.json document. `path` is only used in error messages.
absl::StatusOr<ModelConfig> ParseModelConfig(const nlohmann::json& json, std::string_view path);

// Mistral attends within a sliding window; the engine computes full causal attention, which is
// the same only while a calibration block is no longer than the window. FailedPrecondition
// naming both numbers otherwise.
absl::Status CheckSequenceLength(const ModelConfig& config, int max_seq_len);

// Reads and parses `model_dir`/config.json.
absl::StatusOr<ModelConfig> LoadModelConfig(std::string_view model_dir);

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_MODEL_MODEL_CONFIG_H_
