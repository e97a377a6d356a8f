// Mixtral (MixtralForCausalLM; AutoAWQ awq/models/mixtral.py): Mistral's attention (a
// sliding_window, when set, on every layer) and `block_sparse_moe` — router
// `block_sparse_moe.gate`, top-k of the softmax always renormalised, experts
// `block_sparse_moe.experts.E.{w1,w3,w2}` (gate, up, down). Layout and scaling groups:
// model/moe_layout.h.
#include "io/status_macros.h"
#include "model/families/family_parsing.h"
#include "model/moe_layout.h"

namespace quantd::engine {

const ArchitectureSpec& MistralArchitecture();

namespace {

// Mistral's config with a sparse block in place of the MLP.
absl::Status ParseMixtral(const JsonFields& f, ModelConfig* config) {
  QUANTD_RETURN_IF_ERROR(MistralArchitecture().parse(f, config));
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
