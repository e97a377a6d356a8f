// The mixture-of-experts part of a model's config.json: how many experts, how many route per
// token, their width, and the family's naming. Parsed from both styles real checkpoints use
// (transformers 4.x: Qwen's num_experts, Mixtral's num_local_experts; transformers 5.x writes
// num_local_experts for every family). A dense model has num_experts 0.
#ifndef QUANTD_ENGINE_MODEL_MOE_CONFIG_H_
#define QUANTD_ENGINE_MODEL_MOE_CONFIG_H_

#include "absl/status/status.h"

namespace quantd::engine {

class JsonFields;

// How a family lays out and computes its sparse block (transformers' modeling code):
// - kQwen3: `mlp.gate` router, `mlp.experts.E.{gate,up,down}_proj`; softmax over all experts,
//   top-k, renormalised when norm_topk_prob.
// - kQwen2: kQwen3 plus `mlp.shared_expert.{gate,up,down}_proj` run on every token and scaled by
//   sigmoid(`mlp.shared_expert_gate`(x)) (a [1, hidden] Linear).
// - kMixtral: `block_sparse_moe.gate` router, `block_sparse_moe.experts.E.{w1,w3,w2}` (gate, up,
//   down); the top-k probabilities are always renormalised.
enum class MoeStyle { kNone, kQwen3, kQwen2, kMixtral };

struct MoeConfig {
  MoeStyle style = MoeStyle::kNone;
  int num_experts = 0;  // 0: dense model
  int experts_per_token = 0;
  int expert_intermediate_size = 0;  // moe_intermediate_size (Qwen) / intermediate_size (Mixtral)
  bool norm_topk_prob = false;       // renormalise the top-k probabilities to sum 1
  int shared_expert_intermediate_size = 0;  // kQwen2 only

  bool enabled() const { return num_experts > 0; }
  bool has_shared_expert() const { return shared_expert_intermediate_size > 0; }
};

// Parses the MoE fields of a config of `style` into `moe`: errors name the field and what was
// expected (InvalidArgument), or what is not supported (FailedPrecondition).
//
// Qwen's decoder_sparse_step and mlp_only_layers can make some layers dense; every released
// Qwen2-MoE / Qwen3-MoE has step 1 and no mlp-only layer, and a family record describes one layer
// layout, so such mixed configs are refused naming the field.
absl::Status ParseMoeConfig(const JsonFields& fields, MoeStyle style, int num_hidden_layers,
                            MoeConfig* moe);

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_MODEL_MOE_CONFIG_H_
