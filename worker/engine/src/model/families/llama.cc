// Llama 2/3.x (LlamaForCausalLM; AutoAWQ awq/models/llama.py). Llama 3.x's "llama3" RoPE scaling is
// read with the common fields (model_config.cc); Llama 3.2's tied embeddings come from
// tie_word_embeddings. Scaling groups: llama_layout.h.
#include "io/status_macros.h"
#include "model/families/family_parsing.h"
#include "model/families/llama_layout.h"
#include "model/layer_weights.h"

namespace quantd::engine {
namespace {

absl::Status ParseLlama(const JsonFields& f, ModelConfig* config) {
  QUANTD_RETURN_IF_ERROR(ExpectActivation(f, "silu"));
  QUANTD_RETURN_IF_ERROR(RefuseAttentionBias(f, *config));
  QUANTD_ASSIGN_OR_RETURN(int window, SlidingWindow(f));
  return ApplyLayerTypes(f, window, config).status();
}

}  // namespace

const ArchitectureSpec& LlamaArchitecture() {
  static const ArchitectureSpec spec{
      .name = "llama",
      .hf_class = "LlamaForCausalLM",
      .model_types = {"llama"},
      .autoawq_class = "LlamaAWQForCausalLM",
      .tied_embeddings_by_default = false,
      .float16_overflows = false,
      .native_remote_code = "",
      .parse = ParseLlama,
      .layer_tensors = LlamaLayerTensors,
      .scaling_groups = PostAttentionNormGroups,
  };
  return spec;
}

}  // namespace quantd::engine
