// AutoAWQ's statistics over calibration rows split across data-parallel ranks equal those of one
// rank holding every row: input means, row means (grid losses), and the clip search's sample.
#include "parallel/sharded_statistics.h"

#include <functional>
#include <random>
#include <thread>
#include <vector>

#include "awq/clip_search.h"
#include "awq/scale_search.h"
#include "gtest/gtest.h"

namespace quantd::engine {
namespace {

Tensor RandomRows(int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> value(0.0f, 2.0f);
  Tensor x({rows, cols});
  for (float& v : x.data) v = value(rng);
  return x;
}

Tensor Rows(const Tensor& x, int64_t first, int64_t count) {
  Tensor out({count, x.dim(1)});
  std::copy_n(x.ptr() + first * x.dim(1), count * x.dim(1), out.ptr());
  return out;
}

// Runs fn(comm, rows of that rank) on one thread per rank; rank r holds rows [bounds[r],
// bounds[r+1]).
void OnShards(const Tensor& x, const std::vector<int64_t>& bounds,
              const std::function<void(Communicator*, const Tensor&)>& fn) {
  auto comms = CreateInProcessGroup(static_cast<int>(bounds.size()) - 1);
  std::vector<std::thread> threads;
  for (size_t r = 0; r + 1 < bounds.size(); ++r) {
    threads.emplace_back(
        [&, r] { fn(comms[r].get(), Rows(x, bounds[r], bounds[r + 1] - bounds[r])); });
  }
  for (std::thread& t : threads) t.join();
}

TEST(ShardedStatisticsTest, ShardsKnowWhereTheirRowsLie) {
  const Tensor x = RandomRows(10, 2, 1);
  std::vector<RowShard> shards(3);
  const std::vector<int64_t> bounds = {0, 4, 7, 10};
  OnShards(x, bounds, [&](Communicator* c, const Tensor& mine) {
    absl::StatusOr<RowShard> s = ShardRows(c, mine.dim(0));
    ASSERT_TRUE(s.ok()) << s.status();
    shards[static_cast<size_t>(c->rank())] = *s;
  });
  for (size_t r = 0; r < 3; ++r) {
    EXPECT_EQ(shards[r].first, bounds[r]);
    EXPECT_EQ(shards[r].rows, bounds[r + 1] - bounds[r]);
    EXPECT_EQ(shards[r].total, 10);
  }
  absl::StatusOr<RowShard> alone = ShardRows(nullptr, 5);
  ASSERT_TRUE(alone.ok());
  EXPECT_EQ(alone->total, 5);
}

TEST(ShardedStatisticsTest, InputMeanOfShardsIsTheInputMeanOfAllRows) {
  const Tensor x = RandomRows(1001, 48, 2);
  for (DType md : {DType::kF16, DType::kBF16, DType::kF32}) {
    const std::vector<float> want = InputMean(x, md);
    OnShards(x, {0, 333, 334, 800, 1001}, [&](Communicator* c, const Tensor& mine) {
      absl::StatusOr<RowShard> shard = ShardRows(c, mine.dim(0));
      ASSERT_TRUE(shard.ok());
      absl::StatusOr<std::vector<float>> got = ShardedInputMean(c, *shard, mine, md);
      ASSERT_TRUE(got.ok()) << got.status();
      ASSERT_EQ(got->size(), want.size());
      // Sums of |x| in double, added in another order: equal after rounding to md (float32:
      // within one float ulp).
      for (size_t j = 0; j < want.size(); ++j) EXPECT_FLOAT_EQ((*got)[j], want[j]) << j;
    });
  }
}

TEST(ShardedStatisticsTest, RowMeansOfShardsAreTheMeansOfAllRows) {
  const Tensor x = RandomRows(90, 3, 3);
  // A grid loss stand-in: the mean over rows of x[:, k]².
  auto means = [](const Tensor& rows) {
    std::vector<double> m(3, 0.0);
    for (int64_t i = 0; i < rows.dim(0); ++i) {
      for (int k = 0; k < 3; ++k) m[k] += rows.ptr()[i * 3 + k] * rows.ptr()[i * 3 + k];
    }
    for (double& v : m) v /= static_cast<double>(rows.dim(0));
    return m;
  };
  const std::vector<double> want = means(x);
  OnShards(x, {0, 10, 50, 90}, [&](Communicator* c, const Tensor& mine) {
    absl::StatusOr<RowShard> shard = ShardRows(c, mine.dim(0));
    ASSERT_TRUE(shard.ok());
    std::vector<double> got = means(mine);
    ASSERT_TRUE(ReduceRowMeans(c, *shard, &got).ok());
    for (int k = 0; k < 3; ++k) EXPECT_NEAR(got[k], want[k], 1e-12 * want[k]);
  });
}

TEST(ShardedStatisticsTest, ClipSampleOfShardsIsExactlyTheSampleOfAllRows) {
  // 2053 rows: step 4, 514 sampled rows, shard boundaries off the step.
  const Tensor x = RandomRows(2053, 16, 4);
  const Tensor want = SampleClipTokens(x);
  ASSERT_EQ(want.dim(0), 514);
  OnShards(x, {0, 513, 1027, 1030, 2053}, [&](Communicator* c, const Tensor& mine) {
    absl::StatusOr<RowShard> shard = ShardRows(c, mine.dim(0));
    ASSERT_TRUE(shard.ok());
    absl::StatusOr<Tensor> got = ShardedClipTokens(c, *shard, mine);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->shape, want.shape);
    EXPECT_EQ(got->data, want.data);  // gathered, not summed: bit for bit
  });
}

}  // namespace
}  // namespace quantd::engine
