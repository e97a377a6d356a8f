#include "parallel/sharded_statistics.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "awq/clip_search.h"
#include "awq/scale_search.h"

namespace quantd::engine {

absl::StatusOr<RowShard> ShardRows(Communicator* comm, int64_t local_rows) {
  if (comm == nullptr || comm->size() == 1) return RowShard{0, local_rows, local_rows};
  // Every rank's row count in its own slot; the sum is the list.
  std::vector<double> counts(static_cast<size_t>(comm->size()), 0.0);
  counts[static_cast<size_t>(comm->rank())] = static_cast<double>(local_rows);
  if (absl::Status s = comm->AllReduceSum(absl::MakeSpan(counts)); !s.ok()) return s;
  RowShard shard{0, local_rows, 0};
  for (int r = 0; r < comm->size(); ++r) {
    const int64_t rows = static_cast<int64_t>(counts[static_cast<size_t>(r)]);
    if (r < comm->rank()) shard.first += rows;
    shard.total += rows;
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
  if (x.dim(0) != shard.rows) {
    return absl::InternalError(
        absl::StrCat("clip sample: ", x.dim(0), " rows held, the shard says ", shard.rows));
  }
  const int64_t c = x.dim(1);
  const int64_t step = ClipSampleStep(shard.total);
  const int64_t kept = (shard.total + step - 1) / step;
  // The rows of the single-rank sample this rank holds go to their places; the others stay 0
  // and adding zeros is exact, so the sum is the sample itself.
  Tensor sample({kept, c});
  const int64_t begin = (shard.first + step - 1) / step;
  for (int64_t t = begin; t < kept && t * step < shard.first + shard.rows; ++t) {
    std::copy_n(x.ptr() + (t * step - shard.first) * c, c, sample.ptr() + t * c);
  }
  if (absl::Status s = comm->AllReduceSum(absl::MakeSpan(sample.data)); !s.ok()) return s;
  return sample;
}

}  // namespace quantd::engine
