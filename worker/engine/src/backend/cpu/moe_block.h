// A sparse MoE block on the host, as transformers 4.51 computes it (Qwen3MoeSparseMoeBlock,
// Qwen2MoeSparseMoeBlock, MixtralSparseMoeBlock — the code AutoAWQ 0.2.9's MoE support runs on):
//
//   logits = router(x)                                  Linear output, md
//   p = softmax(logits) in float32; top-k of p (ties: lower expert index first)
//   renormalised p_topk / Σ p_topk in float32 when norm_topk_prob (always for Mixtral), then md
//   y = Σ over experts e in increasing index of md(expert_e(x) · w_e), each sum rounded to md
//       (index_add_ into an md tensor that starts at zero)
//   Qwen2-MoE: y = md(y + md(md(sigmoid(shared_expert_gate(x))) · shared_expert(x)))
//
// The routing is computed once and reused by the scale search's trials: AutoAWQ's trials of the
// experts' gate/up group rerun the block on the same input with the router unchanged.
#ifndef QUANTD_ENGINE_BACKEND_CPU_MOE_BLOCK_H_
#define QUANTD_ENGINE_BACKEND_CPU_MOE_BLOCK_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "core/dtype.h"
#include "core/tensor.h"
#include "model/layer_weights.h"
#include "model/moe_config.h"

namespace quantd::engine {

// The experts each token is routed to, and each expert's tokens.
struct Routing {
  int64_t tokens = 0;
  int k = 0;
  std::vector<int32_t> expert;  // [tokens, k], top-k order (descending probability)
  std::vector<float> weight;    // [tokens, k], values in md
  // Per expert, its tokens (those that chose it first, in increasing order, then those that chose
  // it second, ...) and their routing weights.
  std::vector<std::vector<int64_t>> tokens_of;
  std::vector<std::vector<float>> weight_of;
};

// Routes the rows of `logits` [tokens, experts] (the router's md output).
Routing RouteTokens(const MoeConfig& moe, const Tensor& logits, DType md);

// The top-k experts of one row of router logits, in top-k order (the routing rule of
// RouteTokens, without the weights); for tests that compare routings.
std::vector<int32_t> TopExperts(const float* logits, int experts, int k);

// The Linears a block forward uses (trial weights substitute some).
struct ExpertView {
  const LinearWeights *gate = nullptr, *up = nullptr, *down = nullptr;
};
struct MoeView {
  std::vector<ExpertView> experts;
  std::optional<ExpertView> shared_expert;
  const LinearWeights* shared_expert_gate = nullptr;
};
MoeView ViewOf(const MoeWeights& w);

// What AWQ needs of a block forward: the routing, each expert's input (its routed tokens, in
// tokens_of order) and down_proj input (silu(gate)·up of them), and the shared expert's.
struct MoeCapture {
  Routing routing;
  std::vector<Tensor> routed_input;  // per expert [tokens_of[e], hidden]
  std::vector<Tensor> down_input;    // per expert [tokens_of[e], I]
  Tensor shared_down_input;          // [tokens, I_shared] (Qwen2-MoE)
};

// The rows `rows` of x [N, C] as [rows.size(), C].
Tensor GatherTokenRows(const Tensor& x, const std::vector<int64_t>& rows);

// The block's output [tokens, hidden] for x [tokens, hidden] with `routing`; with `capture`
// (its routing already set), also the down_proj inputs.
Tensor MoeBlockForward(const MoeView& w, const Routing& routing, const Tensor& x, DType md,
                       MoeCapture* capture);

// router(x) then RouteTokens.
Routing RouteBlock(const MoeConfig& moe, const MoeWeights& w, const Tensor& x, DType md);

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_BACKEND_CPU_MOE_BLOCK_H_
