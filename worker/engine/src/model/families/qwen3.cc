// Qwen3 (Qwen3ForCausalLM; AutoAWQ awq/models/qwen3.py): Llama's layer with an RMSNorm over each
// head of q and k (self_attn.q_norm / k_norm, [head_dim]) before RoPE, no q/k/v bias, head_dim
// given explicitly. The q/k norms sit inside self_attn, so the attention group's loss includes
// them; they are never scaled. Scaling groups: llama_layout.h.
#include "io/status_macros.h"
#include "model/families/family_parsing.h"
#include "model/families/llama_layout.h"
#include "model/layer_weights.h"

namespace quantd::engine {
namespace {

absl::Status ParseQwen3(const JsonFields& f, ModelConfig* config) {
  QUANTD_RETURN_IF_ERROR(ExpectActivation(f, "silu"));
  QUANTD_RETURN_IF_ERROR(RefuseAttentionBias(f, *config));
  config->qk_norm = true;
  return ApplyQwenSlidingWindow(f, config);
}

}  // namespace

const ArchitectureSpec& Qwen3Architecture() {
  static const ArchitectureSpec spec{
      .name = "qwen3",
      .hf_class = "Qwen3ForCausalLM",
      .model_types = {"qwen3"},
      .autoawq_class = "Qwen3AWQForCausalLM",
      .tied_embeddings_by_default = false,
      .float16_overflows = false,
      .native_remote_code = "",
      .parse = ParseQwen3,
      .layer_tensors = LlamaLayerTensors,
      .scaling_groups = PostAttentionNormGroups,
  };
  return spec;
}

}  // namespace quantd::engine
