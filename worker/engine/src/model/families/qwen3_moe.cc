// Qwen3-MoE (Qwen3MoeForCausalLM; AutoAWQ awq/models/qwen3_moe.py): Qwen3's attention (q/k
// RMSNorm, no bias) and a sparse MoE block in the MLP's place — `mlp.gate` router, softmax over
// all experts, top-k (renormalised when norm_topk_prob), experts
// `mlp.experts.E.{gate,up,down}_proj`. Layout and scaling groups: model/moe_layout.h.
#include "io/status_macros.h"
#include "model/families/family_parsing.h"
#include "model/moe_layout.h"

namespace quantd::engine {

const ArchitectureSpec& Qwen3Architecture();

namespace {

// Qwen3's config (q/k norms) with a sparse block in place of the MLP.
absl::Status ParseQwen3Moe(const JsonFields& f, ModelConfig* config) {
  QUANTD_RETURN_IF_ERROR(Qwen3Architecture().parse(f, config));
  return ParseMoeConfig(f, MoeStyle::kQwen3, config->num_hidden_layers, &config->moe);
}

}  // namespace

const ArchitectureSpec& Qwen3MoeArchitecture() {
  static const ArchitectureSpec spec{
      .name = "qwen3_moe",
      .hf_class = "Qwen3MoeForCausalLM",
      .model_types = {"qwen3_moe"},
      .autoawq_class = "Qwen3MoeAWQForCausalLM",
      .tied_embeddings_by_default = false,
      .float16_overflows = false,
      .native_remote_code = "",
      .parse = ParseQwen3Moe,
      .layer_tensors = MoeLayerTensors,
      .scaling_groups = MoeScalingGroups,
  };
  return spec;
}

}  // namespace quantd::engine
