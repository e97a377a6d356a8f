#include "parallel/sharded_statistics.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "awq/clip_search.h"
#include "awq/scale_search.h"

namespace quantd::engine {

absl::StatusOr<std::vector<std::vector<int64_t>>> AllRanksCounts(
    Communicator* comm, const std::vector<int64_t>& local) {
  if (comm == nullptr || comm->size() == 1) return std::vector<std::vector<int64_t>>{local};
  // Every rank's counts in its own slot; the sum is the table (counts are exact in a double).
  const size_t n = local.size();
  std::vector<double> table(static_cast<size_t>(comm->size()) * n, 0.0);
  for (size_t i = 0; i < n; ++i) {
    table[static_cast<size_t>(comm->rank()) * n + i] = static_cast<double>(local[i]);
  }
  if (absl::Status s = comm->AllReduceSum(absl::MakeSpan(table)); !s.ok()) return s;
  std::vector<std::vector<int64_t>> counts(static_cast<size_t>(comm->size()),
                                           std::vector<int64_t>(n));
  for (size_t r = 0; r < counts.size(); ++r) {
    for (size_t i = 0; i < n; ++i) counts[r][i] = static_cast<int64_t>(table[r * n + i]);
  }
  return counts;
}

absl::StatusOr<RowShard> ShardRows(Communicator* comm, int64_t local_rows) {
  absl::StatusOr<std::vector<std::vector<int64_t>>> counts = AllRanksCounts(comm, {local_rows});
  if (!counts.ok()) return counts.status();
  const int rank = comm == nullptr ? 0 : comm->rank();
  RowShard shard{0, local_rows, 0, {}};
  for (size_t r = 0; r < counts->size(); ++r) {
    if (static_cast<int>(r) < rank) shard.first += (*counts)[r][0];
    shard.total += (*counts)[r][0];
  }
  return shard;
}

absl::StatusOr<std::vector<float>> ShardedInputMean(Communicator* comm, const RowShard& shard,
                                                    const Tensor& x, DType md) {
  std::vector<double> sums = InputAbsSums(x);
  if (comm != nullptr && comm->size() > 1) {
    if (absl::Status s = comm->AllReduceSum(absl::MakeSpan(sums)); !s.ok()) return s;
  }
  return InputMeanFromSums(sums, shard.total, md);
}

absl::Status ReduceRowMeans(Communicator* comm, const RowShard& shard, std::vector<double>* means) {
  if (comm == nullptr || comm->size() == 1) return absl::OkStatus();
  // Sums over rows (mean × rows) are what add up; the total divides them once more.
  for (double& m : *means) m *= static_cast<double>(shard.rows);
  if (absl::Status s = comm->AllReduceSum(absl::MakeSpan(*means)); !s.ok()) return s;
  for (double& m : *means) m /= static_cast<double>(shard.total);
  return absl::OkStatus();
}

absl::StatusOr<Tensor> ShardedClipTokens(Communicator* comm, const RowShard& shard,
                                         const Tensor& x) {
  if (comm == nullptr || comm->size() == 1) return SampleClipTokens(x);
  if (x.shape.size() != 2 || x.dim(0) != shard.rows) {
    return absl::InternalError(absl::StrCat("clip sample: ", x.shape.empty() ? 0 : x.dim(0),
                                            " rows held, the shard says ", shard.rows));
  }
  const int64_t c = x.dim(1);
  const int64_t step = ClipSampleStep(shard.total);
  const int64_t kept = (shard.total + step - 1) / step;
  // The rows of the single-rank sample this rank holds go to their places; the others stay 0
  // and adding zeros is exact, so the sum is the sample itself.
  Tensor sample({kept, c});
  const std::vector<RowRun> runs =
      shard.runs.empty() ? std::vector<RowRun>{{0, shard.first, shard.rows}} : shard.runs;
  for (const RowRun& run : runs) {
    const int64_t end = run.global_first + run.count;
    for (int64_t t = (run.global_first + step - 1) / step; t < kept && t * step < end; ++t) {
      const int64_t local = run.local_first + (t * step - run.global_first);
      std::copy_n(x.ptr() + local * c, c, sample.ptr() + t * c);
    }
  }
  if (absl::Status s = comm->AllReduceSum(absl::MakeSpan(sample.data)); !s.ok()) return s;
  return sample;
}

}  // namespace quantd::engine
