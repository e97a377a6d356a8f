// Mistral and Ministral (MistralForCausalLM; AutoAWQ awq/models/mistral.py): Llama's layer; a
// sliding_window (Mistral 7B v0.1: 4096, Ministral 8B: 32768; null from v0.2 on) applies to every
// layer and is honoured — a query attends to the last sliding_window keys, itself included — so
// calibration blocks may be longer than the window. Scaling groups: llama_layout.h.
#include "io/status_macros.h"
#include "model/families/family_parsing.h"
#include "model/families/llama_layout.h"
#include "model/layer_weights.h"

namespace quantd::engine {
namespace {

absl::Status ParseMistral(const JsonFields& f, ModelConfig* config) {
  QUANTD_RETURN_IF_ERROR(ExpectActivation(f, "silu"));
  QUANTD_RETURN_IF_ERROR(RefuseAttentionBias(f, *config));
  QUANTD_ASSIGN_OR_RETURN(int window, SlidingWindow(f));
  QUANTD_ASSIGN_OR_RETURN(bool typed, ApplyLayerTypes(f, window, config));
  if (!typed) {
    for (LayerAttention& a : config->layer_attention) a.sliding_window = window;
  }
  return absl::OkStatus();
}

}  // namespace

const ArchitectureSpec& MistralArchitecture() {
  static const ArchitectureSpec spec{
      .name = "mistral",
      .hf_class = "MistralForCausalLM",
      .model_types = {"mistral"},
      .autoawq_class = "MistralAWQForCausalLM",
      .tied_embeddings_by_default = false,
      .float16_overflows = false,
      .native_remote_code = "",
      .parse = ParseMistral,
      .layer_tensors = LlamaLayerTensors,
      .scaling_groups = PostAttentionNormGroups,
  };
  return spec;
}

}  // namespace quantd::engine
