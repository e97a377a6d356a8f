// Qwen2 / Qwen2.5 (Qwen2ForCausalLM; AutoAWQ awq/models/qwen2.py): Llama's layer with a bias on
// q/k/v. use_sliding_window (off in the released models) gives layers from max_window_layers on a
// window, which is honoured. Scaling groups: llama_layout.h.
#include "io/status_macros.h"
#include "model/families/family_parsing.h"
#include "model/families/llama_layout.h"
#include "model/layer_weights.h"

namespace quantd::engine {
namespace {

absl::Status ParseQwen2(const JsonFields& f, ModelConfig* config) {
  QUANTD_RETURN_IF_ERROR(ExpectActivation(f, "silu"));
  config->attention_bias = true;
  return ApplyQwenSlidingWindow(f, config);
}

}  // namespace

const ArchitectureSpec& Qwen2Architecture() {
  static const ArchitectureSpec spec{
      .name = "qwen2",
      .hf_class = "Qwen2ForCausalLM",
      .model_types = {"qwen2"},
      .autoawq_class = "Qwen2AWQForCausalLM",
      .tied_embeddings_by_default = false,
      .float16_overflows = false,
      .native_remote_code = "",
      .parse = ParseQwen2,
      .layer_tensors = LlamaLayerTensors,
      .scaling_groups = PostAttentionNormGroups,
  };
  return spec;
}

}  // namespace quantd::engine
