// Qwen2-MoE / Qwen1.5-MoE (Qwen2MoeForCausalLM): Qwen2's attention (q/k/v bias) and a sparse MoE
// block — `mlp.gate` router, top-k of the softmax (renormalised when norm_topk_prob), experts
// `mlp.experts.E.*` — plus a shared expert `mlp.shared_expert.{gate,up,down}_proj` on every token,
// weighted by sigmoid(`mlp.shared_expert_gate`(x)). AutoAWQ 0.2.9 has no Qwen2-MoE class; its
// groups here are Qwen3-MoE's with the shared expert's gate/up in the experts' input group and its
// own up → down group, as AutoAWQ's deepseek_v2.py treats shared experts. Layout: moe_layout.h.
#include "io/status_macros.h"
#include "model/families/family_parsing.h"
#include "model/moe_layout.h"

namespace quantd::engine {

const ArchitectureSpec& Qwen2Architecture();

namespace {

// Qwen2's config (q/k/v bias) with a sparse block (and its shared expert) in place of the MLP.
absl::Status ParseQwen2Moe(const JsonFields& f, ModelConfig* config) {
  QUANTD_RETURN_IF_ERROR(Qwen2Architecture().parse(f, config));
  return ParseMoeConfig(f, MoeStyle::kQwen2, config->num_hidden_layers, &config->moe);
}

}  // namespace

const ArchitectureSpec& Qwen2MoeArchitecture() {
  static const ArchitectureSpec spec{
      .name = "qwen2_moe",
      .hf_class = "Qwen2MoeForCausalLM",
      .model_types = {"qwen2_moe"},
      .autoawq_class = "",
      .tied_embeddings_by_default = false,
      .float16_overflows = false,
      .native_remote_code = "",
      .parse = ParseQwen2Moe,
      .layer_tensors = MoeLayerTensors,
      .scaling_groups = MoeScalingGroups,
  };
  return spec;
}

}  // namespace quantd::engine
