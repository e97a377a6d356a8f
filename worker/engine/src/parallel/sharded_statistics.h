// The statistics of AutoAWQ's search when the calibration rows are split across data-parallel
// ranks (communicator.h): each rank computes its part over the rows it holds, the parts are summed
// across ranks, and every rank continues from the same totals — so every rank takes the decision a
// single rank holding all rows would take, up to the order of floating-point sums. With no
// communicator (or a group of one) each function is its single-rank computation.
#ifndef QUANTD_ENGINE_PARALLEL_SHARDED_STATISTICS_H_
#define QUANTD_ENGINE_PARALLEL_SHARDED_STATISTICS_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "core/dtype.h"
#include "core/tensor.h"
#include "parallel/communicator.h"

namespace quantd::engine {

// A run of this rank's rows (from its row local_first) that lies at rows [global_first,
// global_first + count) of the rows a single rank holding every row would have.
struct RowRun {
  int64_t local_first = 0;
  int64_t global_first = 0;
  int64_t count = 0;
};

// Where this rank's rows lie among all ranks' rows.
struct RowShard {
  int64_t first = 0;  // global index of this rank's first row (rows in rank order)
  int64_t rows = 0;   // rows this rank holds
  int64_t total = 0;  // rows of all ranks
  // The single rank's order when it is not rank order, [first, first + rows): a routed expert's
  // rows are every rank's top-1 choices, then every rank's top-2 choices, ... (RouteTokens).
  // Empty: one run at `first`.
  std::vector<RowRun> runs;
};
absl::StatusOr<RowShard> ShardRows(Communicator* comm, int64_t local_rows);

// Every rank's `local` (the same length on all ranks): element [r][i] is rank r's local[i]. One
// all-reduce; with no communicator (or a group of one), {local}.
absl::StatusOr<std::vector<std::vector<int64_t>>> AllRanksCounts(Communicator* comm,
                                                                 const std::vector<int64_t>& local);

// x_mean [C] of InputMean (awq/scale_search.h) over every rank's rows of x [rows, C]: the sums of
// |x| are added across ranks before the mean is taken and rounded to md.
absl::StatusOr<std::vector<float>> ShardedInputMean(Communicator* comm, const RowShard& shard,
                                                    const Tensor& x, DType md);

// Means over rows: on entry each value is a mean over this rank's shard.rows rows, on return the
// mean over all shard.total rows (the values weighted by each rank's share of the rows, summed).
// The loss of every grid point of the scale search is such a mean (an output MSE over tokens).
absl::Status ReduceRowMeans(Communicator* comm, const RowShard& shard, std::vector<double>* means);

// SampleClipTokens (awq/clip_search.h) of all ranks' rows in the single rank's order (shard.runs):
// every rank gets the same [kept, C] sample a single rank holding all rows would take (the sampled
// rows are gathered exactly, each rank contributing those it holds), so every rank searches the
// same clips. x is [shard.rows, C], zero rows included.
absl::StatusOr<Tensor> ShardedClipTokens(Communicator* comm, const RowShard& shard,
                                         const Tensor& x);

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_PARALLEL_SHARDED_STATISTICS_H_
