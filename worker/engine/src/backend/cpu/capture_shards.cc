#include "backend/cpu/capture_shards.h"

#include <optional>

#include "model/moe_layout.h"

namespace quantd::engine {

absl::StatusOr<CaptureShards> CaptureShards::Gather(Communicator* comm, const LayerCapture& cap,
                                                    int64_t tokens) {
  // This rank's counts: [tokens, then per expert e and choice j the tokens whose j-th choice is e].
  const Routing* routing = cap.moe.has_value() ? &cap.moe->routing : nullptr;
  const size_t experts = routing != nullptr ? routing->tokens_of.size() : 0;
  const size_t k = routing != nullptr ? static_cast<size_t>(routing->k) : 0;
  std::vector<int64_t> local(1 + experts * k, 0);
  local[0] = tokens;
  if (routing != nullptr) {
    for (size_t at = 0; at < routing->expert.size(); ++at) {
      ++local[1 + static_cast<size_t>(routing->expert[at]) * k + at % k];
    }
  }
  absl::StatusOr<std::vector<std::vector<int64_t>>> all = AllRanksCounts(comm, local);
  if (!all.ok()) return all.status();
  const size_t rank = comm == nullptr ? 0 : static_cast<size_t>(comm->rank());

  CaptureShards shards;
  shards.tokens_.rows = tokens;
  for (size_t r = 0; r < all->size(); ++r) {
    if (r < rank) shards.tokens_.first += (*all)[r][0];
    shards.tokens_.total += (*all)[r][0];
  }
  shards.experts_.resize(experts);
  for (size_t e = 0; e < experts; ++e) {
    RowShard& s = shards.experts_[e];
    for (size_t j = 0; j < k; ++j) {
      const size_t i = 1 + e * k + j;
      // Choice j's rows follow every rank's rows of choices before j; among them, ranks before
      // this one come first (their tokens precede this rank's).
      int64_t before = 0, choice_total = 0;
      for (size_t r = 0; r < all->size(); ++r) {
        if (r < rank) before += (*all)[r][i];
        choice_total += (*all)[r][i];
      }
      s.runs.push_back({s.rows, s.total + before, local[i]});
      s.rows += local[i];
      s.total += choice_total;
    }
    s.first = s.runs.empty() ? 0 : s.runs.front().global_first;
  }
  return shards;
}

const RowShard& CaptureShards::ForLinear(std::string_view linear) const {
  if (std::optional<int> e = ExpertOfLinear(linear);
      e.has_value() && static_cast<size_t>(*e) < experts_.size()) {
    return experts_[static_cast<size_t>(*e)];
  }
  return tokens_;
}

std::vector<int64_t> CaptureShards::ExpertTokens() const {
  std::vector<int64_t> tokens;
  tokens.reserve(experts_.size());
  for (const RowShard& s : experts_) tokens.push_back(s.total);
  return tokens;
}

void ShapeEmptyExpertInputs(const MoeWeights& weights, MoeCapture* cap) {
  for (size_t e = 0; e < weights.experts.size() && e < cap->routed_input.size(); ++e) {
    if (!cap->routed_input[e].data.empty()) continue;
    cap->routed_input[e] = Tensor({0, weights.experts[e].gate_proj.in_features()});
    cap->down_input[e] = Tensor({0, weights.experts[e].down_proj.in_features()});
  }
}

}  // namespace quantd::engine
