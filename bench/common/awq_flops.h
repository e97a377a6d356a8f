// Useful floating-point work of AWQ on one decoder layer, shared by the benchmarks that report
// achieved TFLOP/s: the captured forward, 20 trial forwards of self_attn and of the MLP, the Gram
// matrices and their 20 quadratic forms (AutoAWQ's arithmetic floor as issue 6 counts it, plus the
// Gram terms quantd's exact reformulation adds). MoE layers count the routed work only.
#ifndef QUANTD_BENCH_COMMON_AWQ_FLOPS_H_
#define QUANTD_BENCH_COMMON_AWQ_FLOPS_H_

#include "model/model_config.h"

namespace quantd::bench {

// `tokens` calibration tokens in blocks of `len`.
inline double AwqLayerFlops(const engine::ModelConfig& c, double tokens, double len) {
  const double h = c.hidden_size, im = c.intermediate_size;
  const double qd = double{1} * c.num_attention_heads * c.head_dim;
  const double kvd = double{1} * c.num_key_value_heads * c.head_dim;
  const double attn_core = 2.0 * tokens * len * c.head_dim * c.num_attention_heads;
  const double attn = 2.0 * tokens * h * (qd + 2 * kvd) + 2.0 * tokens * qd * h + attn_core;
  double mlp = 2.0 * tokens * h * 2 * im + 2.0 * tokens * im * h;
  double gram = 2.0 * tokens * im * im + 20 * 2.0 * h * im * im;
  if (c.moe.enabled()) {
    // A sparse block: k routed rows per token through one expert's MLP (plus the shared expert on
    // every token), the router, and a Gram matrix per expert over its rows.
    const double ie = c.moe.expert_intermediate_size, is = c.moe.shared_expert_intermediate_size;
    const double rows = tokens * c.moe.experts_per_token;
    mlp = 6.0 * rows * h * ie + 6.0 * tokens * h * is + 2.0 * tokens * h * c.moe.num_experts;
    gram = 2.0 * rows * ie * ie + 20 * 2.0 * h * ie * ie * c.moe.num_experts +
           2.0 * tokens * is * is + 20 * 2.0 * h * is * is;
  }
  if (qd == kvd) gram += 2.0 * tokens * qd * qd + 20 * 2.0 * h * qd * qd;
  return attn + mlp + 20 * (attn + mlp) + gram;
}

}  // namespace quantd::bench

#endif  // QUANTD_BENCH_COMMON_AWQ_FLOPS_H_
