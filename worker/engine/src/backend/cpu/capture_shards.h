// Where the rows of each captured input of a CPU layer forward (decoder_layer.h) lie among all
// data-parallel ranks' rows (parallel/sharded_statistics.h). The inputs every token reaches
// (attention, o_proj, the MLP or the sparse block's input, a shared expert's down_proj) hold the
// rank's contiguous run of calibration tokens. A routed expert's inputs hold the tokens routed to
// it in RouteTokens' order — on one rank holding every token, all top-1 choices in token order,
// then all top-2 choices, ... — so a rank's rows of one expert are up to k runs of that order.
#ifndef QUANTD_ENGINE_BACKEND_CPU_CAPTURE_SHARDS_H_
#define QUANTD_ENGINE_BACKEND_CPU_CAPTURE_SHARDS_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "backend/cpu/decoder_layer.h"
#include "parallel/communicator.h"
#include "parallel/sharded_statistics.h"

namespace quantd::engine {

class CaptureShards {
 public:
  // Every rank calls it after its forward of the same layer: one all-reduce of the ranks' token
  // counts and (sparse layers) per-expert, per-choice routing counts. `comm` null: one rank.
  static absl::StatusOr<CaptureShards> Gather(Communicator* comm, const LayerCapture& cap,
                                              int64_t tokens);

  // The shard of the captured input that `linear` reads (CapturedInput's rule).
  const RowShard& ForLinear(std::string_view linear) const;

  // Calibration tokens routed to each expert over all ranks (sparse layers; empty otherwise):
  // AutoAWQ's per-expert row counts, which decide the under-calibrated experts.
  std::vector<int64_t> ExpertTokens() const;

 private:
  RowShard tokens_;
  std::vector<RowShard> experts_;
};

// Gives every routed expert that got no token on this rank an input of zero rows with its columns
// (MoeBlockForward leaves it empty): data-parallel ranks still take part in that expert's
// statistics when other ranks routed tokens to it.
void ShapeEmptyExpertInputs(const MoeWeights& weights, MoeCapture* cap);

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_BACKEND_CPU_CAPTURE_SHARDS_H_
