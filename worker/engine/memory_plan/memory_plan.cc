#include "quantd/memory_plan/memory_plan.h"

#include <algorithm>
#include <cmath>

namespace quantd::memory_plan {

MemoryEstimate EstimateMemory(const LayerGeometry& g) {
  const double e = g.dtype_bytes;
  const double h = static_cast<double>(g.hidden_size);
  const double im = static_cast<double>(g.intermediate_size);
  const double qd = static_cast<double>(g.num_attention_heads * g.head_dim);
  const double kvd = static_cast<double>(g.num_key_value_heads * g.head_dim);
  MemoryEstimate m;
  m.weights = (h * (qd + 2 * kvd) + qd * h + 3 * h * im) * (4 + e);
  m.fixed = 2.0 * kGiB + (2 * im * im + 2 * qd * qd) * 4;
  m.capture_per_token = 4 * h * 4 + 2 * h * e + qd * 4 + im * e;
  m.per_token = m.capture_per_token + (2 * qd + 2 * kvd) * 4 + qd * e + 3 * im * e + h * (8 + e);
  m.hidden_per_token = h * 4;
  if (g.num_experts > 0) {
    // A sparse layer: every expert's weights, a Gram matrix per expert's down_proj group, one
    // grid point's trial gate/up weights of all experts (the MoE group's smallest batch), and per
    // token its k routed rows and their down_proj inputs, the router's logits and the shared
    // expert's intermediates.
    const double ie = static_cast<double>(g.expert_intermediate_size);
    const double is = static_cast<double>(g.shared_expert_intermediate_size);
    const double ne = static_cast<double>(g.num_experts);
    const double k = static_cast<double>(g.experts_per_token);
    m.weights = (h * (qd + 2 * kvd) + qd * h + (ne * 3 * ie + 3 * is + ne + 1) * h) * (4 + e);
    m.fixed =
        2.0 * kGiB + 2 * qd * qd * 4 + (ne * ie * ie + is * is) * 4 + 2 * (ne * ie + is) * h * e;
    m.capture_per_token = 4 * h * 4 + 2 * h * e + qd * 4 + k * (h + ie) * e + is * e;
    m.per_token = m.capture_per_token + (2 * qd + 2 * kvd) * 4 + qd * e + h * (12 + e) + ne * 4 +
                  3 * is * e + 2 * k * 4;
  }
  return m;
}

int LayersInFlight(const MemoryEstimate& m) { return m.weights > kStageAheadMaxBytes ? 1 : 2; }

bool HiddenStatesOnHost(double hidden_bytes, double available_bytes) {
  return 2 * hidden_bytes > 0.25 * available_bytes;
}

int64_t ChunkBlocks(const MemoryEstimate& m, int64_t blocks, int64_t len, bool on_host,
                    double budget) {
  const double base = m.fixed + LayersInFlight(m) * m.weights;  // the current and staged layer
  const double tokens = static_cast<double>(blocks * len);
  if (!on_host && base + tokens * m.per_token <= budget) return blocks;
  const double other = on_host ? 0.0 : tokens * m.hidden_per_token;
  const double per_block = static_cast<double>(len) * (m.per_token + m.hidden_per_token);
  const double fit = std::floor((budget - base - other) / per_block);
  return fit < 1 ? 0 : static_cast<int64_t>(std::min(fit, static_cast<double>(blocks)));
}

double LayerBudget(double available_bytes, double hidden_device_bytes) {
  return available_bytes - hidden_device_bytes - kMarginBytes;
}

RunPlan PlanRun(const LayerGeometry& g, int64_t blocks, int64_t len, double available_bytes,
                const PlanOverrides& overrides) {
  const MemoryEstimate m = EstimateMemory(g);
  RunPlan p;
  p.blocks = std::max<int64_t>(1, blocks);
  p.len = std::max<int64_t>(1, len);
  const int64_t tokens = p.blocks * p.len;
  p.hidden_bytes = static_cast<double>(tokens) * m.hidden_per_token;
  p.hidden_on_host =
      overrides.hidden_on_host.value_or(HiddenStatesOnHost(p.hidden_bytes, available_bytes));
  const double budget = LayerBudget(available_bytes, p.hidden_on_host ? 0.0 : p.hidden_bytes);
  p.chunk_blocks = overrides.chunk_blocks > 0
                       ? std::min(overrides.chunk_blocks, p.blocks)
                       : ChunkBlocks(m, p.blocks, p.len, p.hidden_on_host, budget);
  p.in_place = !p.hidden_on_host && p.chunk_blocks == p.blocks;
  p.chunks = p.chunk_blocks > 0 ? (p.blocks + p.chunk_blocks - 1) / p.chunk_blocks : 0;
  const double t = static_cast<double>(std::max<int64_t>(1, p.chunk_blocks) * p.len);
  p.capture_bytes = t * m.capture_per_token;
  p.scratch_bytes = t * (m.per_token - m.capture_per_token) + m.fixed;
  p.weights_bytes = m.weights;
  p.layers_in_flight = LayersInFlight(m);
  p.hidden_device_bytes =
      p.hidden_on_host
          ? 0.0
          : (p.in_place ? p.hidden_bytes : 2 * p.hidden_bytes + t * m.hidden_per_token);
  p.planned_bytes = p.hidden_device_bytes + p.capture_bytes + p.scratch_bytes +
                    p.layers_in_flight * p.weights_bytes;
  return p;
}

double AvailableOnGpu(double total_bytes, double used_bytes) {
  return total_bytes - std::max(0.0, used_bytes) - kContextBytes;
}

int64_t SmallestGpuBytes(const LayerGeometry& g, int64_t blocks, int64_t len) {
  const MemoryEstimate m = EstimateMemory(g);
  blocks = std::max<int64_t>(1, blocks);
  len = std::max<int64_t>(1, len);
  const double base = m.fixed + LayersInFlight(m) * m.weights;
  const double hidden = static_cast<double>(blocks * len) * m.hidden_per_token;
  const double per_block = static_cast<double>(len) * (m.per_token + m.hidden_per_token);
  // Hidden states on the host (available < 8 × hidden) with one block per chunk, or on the device
  // with a second copy and one block per chunk (or in place, which needs more); the smallest
  // available memory that the plan itself accepts, found from these closed forms.
  const double candidates[] = {base + per_block + kMarginBytes,
                               std::max(8 * hidden, base + 2 * hidden + per_block + kMarginBytes)};
  double best = -1;
  for (double a : candidates) {
    a = std::ceil(a);
    // The plan's own test decides; a candidate a few bytes short (rounding) is nudged up.
    for (int i = 0; i < 4 && !PlanRun(g, blocks, len, a).fits(); ++i) a += std::max(1.0, a * 1e-9);
    if (PlanRun(g, blocks, len, a).fits() && (best < 0 || a < best)) best = a;
  }
  if (best < 0) best = base + 2 * hidden + per_block + kMarginBytes;  // not reached: a safe bound
  return static_cast<int64_t>(std::ceil(best + kContextBytes));
}

int64_t RankFirstBlock(int64_t blocks, int ranks, int rank) {
  ranks = std::max(1, ranks);
  const int64_t base = blocks / ranks;
  const int64_t extra = blocks % ranks;
  return rank * base + std::min<int64_t>(rank, extra);
}

int64_t RankBlocks(int64_t blocks, int ranks, int rank) {
  return RankFirstBlock(blocks, ranks, rank + 1) - RankFirstBlock(blocks, ranks, rank);
}

int64_t BlocksPerRank(int64_t blocks, int ranks) { return RankBlocks(blocks, ranks, 0); }

}  // namespace quantd::memory_plan
