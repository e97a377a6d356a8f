// Phi-3 and Phi-4 (Phi3ForCausalLM; AutoAWQ awq/models/phi3.py): Llama's layer with q/k/v fused
// into self_attn.qkv_proj and gate/up into mlp.gate_up_proj (gate rows first: up · silu(gate)). The
// engine splits the fused Linears by rows on load and joins the packed tensors on export (the GEMM
// packing is per output column, so splitting changes no value); a sliding_window (Phi-3-mini-4k:
// 2047) applies to every layer and is honoured.
//
// Scaling groups are AutoAWQ's: input_layernorm → qkv_proj (loss on self_attn), qkv_proj →
// o_proj (its last rows are v's), post_attention_layernorm → gate_up_proj (loss on mlp),
// gate_up_proj → down_proj (its last rows are up's). AutoAWQ adds the qkv_proj → o_proj group
// without Llama's shape test; with grouped-query attention (Phi-3-medium, Phi-4) the last
// hidden_size rows of qkv_proj are k, v and part of q, and dividing them by o_proj's scales
// changes the model (the loss, measured on o_proj alone, cannot see it). quantd applies that
// group only where v_proj and o_proj have the same shape (plain MHA: Phi-3-mini), where AutoAWQ's
// rows are exactly v's. qkv_proj's name matches none of AutoAWQ's clip exclusions, so q and k rows
// are clip-searched too, as AutoAWQ does.
#include <optional>

#include "absl/strings/str_cat.h"
#include "io/status_macros.h"
#include "model/families/family_parsing.h"
#include "model/families/llama_layout.h"
#include "model/layer_weights.h"

namespace quantd::engine {
namespace {

constexpr char kQkvProj[] = "self_attn.qkv_proj";
constexpr char kGateUpProj[] = "mlp.gate_up_proj";

absl::Status ParsePhi3(const JsonFields& f, ModelConfig* config) {
  QUANTD_RETURN_IF_ERROR(ExpectActivation(f, "silu"));
  QUANTD_RETURN_IF_ERROR(RefuseAttentionBias(f, *config));
  QUANTD_ASSIGN_OR_RETURN(std::optional<double> partial, f.OptionalNumber("partial_rotary_factor"));
  if (partial.has_value() && *partial != 1.0) {
    return f.Unsupported("partial_rotary_factor",
                         absl::StrCat("partial RoPE (factor ", *partial,
                                      ", Phi-4-mini) is not supported; only 1.0"));
  }
  QUANTD_ASSIGN_OR_RETURN(int window, SlidingWindow(f));
  QUANTD_ASSIGN_OR_RETURN(bool typed, ApplyLayerTypes(f, window, config));
  if (!typed) {
    for (LayerAttention& a : config->layer_attention) a.sliding_window = window;
  }
  return absl::OkStatus();
}

std::vector<LayerTensorSpec> Phi3LayerTensors(const ModelConfig& c) {
  const int64_t h = c.hidden_size;
  const int64_t q = int64_t{c.num_attention_heads} * c.head_dim;
  const int64_t kv = int64_t{c.num_key_value_heads} * c.head_dim;
  const int64_t im = c.intermediate_size;
  // Phi3Attention registers o_proj before qkv_proj.
  return {{kOProj, {h, q}, true, false, {}},
          {kQkvProj, {q + 2 * kv, h}, true, false, {{kQProj, q}, {kKProj, kv}, {kVProj, kv}}},
          {kGateUpProj, {2 * im, h}, true, false, {{kGateProj, im}, {kUpProj, im}}},
          {kDownProj, {h, im}, true, false, {}},
          {kInputNorm, {h}, false, false, {}},
          {kPostAttentionNorm, {h}, false, false, {}}};
}

std::vector<ScalingGroup> Phi3Groups(const ModelConfig& c) {
  std::vector<ScalingGroup> g = PostAttentionNormGroups(c);
  for (ScalingGroup& group : g) {
    if (group.linears.front() == kQProj) group.label = absl::StrCat(kInputNorm, "->", kQkvProj);
    if (group.linears.front() == kOProj) group.label = absl::StrCat(kQkvProj, "->", kOProj);
    if (group.linears.front() == kGateProj) {
      group.label = absl::StrCat(kPostAttentionNorm, "->", kGateUpProj);
    }
    if (group.linears.front() == kDownProj)
      group.label = absl::StrCat(kGateUpProj, "->", kDownProj);
  }
  return g;
}

}  // namespace

const ArchitectureSpec& Phi3Architecture() {
  static const ArchitectureSpec spec{
      .name = "phi3",
      .hf_class = "Phi3ForCausalLM",
      .model_types = {"phi3"},
      .autoawq_class = "Phi3AWQForCausalLM",
      .tied_embeddings_by_default = false,
      .float16_overflows = false,
      .native_remote_code = "modeling_phi3.Phi3ForCausalLM",
      .parse = ParsePhi3,
      .layer_tensors = Phi3LayerTensors,
      .scaling_groups = Phi3Groups,
  };
  return spec;
}

}  // namespace quantd::engine
