// Mixtral (MixtralForCausalLM; AutoAWQ awq/models/mixtral.py): Mistral's attention (a
// sliding_window, when set, on every layer) and `block_sparse_moe` — router
// `block_sparse_moe.gate`, top-k of the softmax always renormalised, experts
// `block_sparse_moe.experts.E.{w1,w3,w2}` (gate, up, down). Layout and scaling groups:
// model/moe_layout.h.
#include "io/status_macros.h"
#include "model/families/family_parsing.h"
#include "model/moe_layout.h"

namespace quantd::engine {
namespace {

absl::Status ParseMixtral(const JsonFields& f, ModelConfig* config) {
  QUANTD_RETURN_IF_ERROR(ExpectActivation(f, "silu"));
  QUANTD_RETURN_IF_ERROR(RefuseAttentionBias(f, *config));
  QUANTD_ASSIGN_OR_RETURN(int window, SlidingWindow(f));
  QUANTD_ASSIGN_OR_RETURN(bool typed, ApplyLayerTypes(f, window, config));
  if (!typed) {
    for (LayerAttention& a : config->layer_attention) a.sliding_window = window;
  }
  return ParseMoeConfig(f, MoeStyle::kMixtral, config->num_hidden_layers, &config->moe);
}

}  // namespace

const ArchitectureSpec& MixtralArchitecture() {
  static const ArchitectureSpec spec{
      .name = "mixtral",
      .hf_class = "MixtralForCausalLM",
      .model_types = {"mixtral"},
      .autoawq_class = "MixtralAWQForCausalLM",
      .tied_embeddings_by_default = false,
      .float16_overflows = false,
      .native_remote_code = "",
      .parse = ParseMixtral,
      .layer_tensors = MoeLayerTensors,
      .scaling_groups = MoeScalingGroups,
  };
  return spec;
}

}  // namespace quantd::engine
