// Where a CPU layer forward's captured rows lie among data-parallel ranks' rows: every token's
// inputs in rank order, a routed expert's rows in the single rank's routing order (all top-1
// choices, then all top-2), so that the clip sample of the experts' rows split across ranks is the
// single rank's sample, row for row.
#include "backend/cpu/capture_shards.h"

#include <random>
#include <thread>
#include <vector>

#include "awq/clip_search.h"
#include "gtest/gtest.h"
#include "model/moe_layout.h"

namespace quantd::engine {
namespace {

constexpr int kExperts = 3;
constexpr int kTopK = 2;
constexpr int64_t kCols = 4;

// A capture of `tokens` tokens routed by `expert` ([tokens, k]) as RouteTokens orders each
// expert's rows, each row holding its global token index (first column) and choice (second).
LayerCapture CaptureOf(const std::vector<int32_t>& expert, int64_t first_token) {
  LayerCapture cap;
  cap.moe.emplace();
  Routing& r = cap.moe->routing;
  r.tokens = static_cast<int64_t>(expert.size()) / kTopK;
  r.k = kTopK;
  r.expert = expert;
  r.tokens_of.assign(kExperts, {});
  for (int j = 0; j < kTopK; ++j) {
    for (int64_t t = 0; t < r.tokens; ++t) {
      r.tokens_of[static_cast<size_t>(expert[static_cast<size_t>(t * kTopK + j)])].push_back(t);
    }
  }
  // Rows: (token, choice) of every routed row, in tokens_of order.
  for (int e = 0; e < kExperts; ++e) {
    std::vector<float> rows;
    for (int j = 0; j < kTopK; ++j) {
      for (int64_t t = 0; t < r.tokens; ++t) {
        if (expert[static_cast<size_t>(t * kTopK + j)] != e) continue;
        rows.insert(rows.end(), {static_cast<float>(first_token + t), static_cast<float>(j), 0, 0});
      }
    }
    Tensor x({static_cast<int64_t>(rows.size()) / kCols, kCols});
    x.data = rows;
    cap.moe->routed_input.push_back(x);
    cap.moe->down_input.push_back(x);
  }
  return cap;
}

std::vector<int32_t> RandomRouting(int64_t tokens, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> out;
  for (int64_t t = 0; t < tokens; ++t) {
    const int32_t a = static_cast<int32_t>(rng() % kExperts);
    const int32_t b = static_cast<int32_t>((a + 1 + rng() % (kExperts - 1)) % kExperts);
    out.insert(out.end(), {a, b});
  }
  return out;
}

TEST(CaptureShardsTest, ExpertClipSamplesOfRanksAreTheSingleRankSample) {
  // 3000 tokens: every expert gets about 2000 rows (clip step 3 or 4), split over 3 ranks.
  const std::vector<int64_t> bounds = {0, 1100, 1101, 3000};
  const std::vector<int32_t> all = RandomRouting(bounds.back(), 7);
  const LayerCapture whole = CaptureOf(all, 0);
  absl::StatusOr<CaptureShards> one = CaptureShards::Gather(nullptr, whole, bounds.back());
  ASSERT_TRUE(one.ok()) << one.status();

  auto comms = CreateInProcessGroup(3);
  std::vector<std::thread> threads;
  for (int r = 0; r < 3; ++r) {
    threads.emplace_back([&, r] {
      const size_t rr = static_cast<size_t>(r);
      const std::vector<int32_t> mine(all.begin() + bounds[rr] * kTopK,
                                      all.begin() + bounds[rr + 1] * kTopK);
      const LayerCapture cap = CaptureOf(mine, bounds[rr]);
      absl::StatusOr<CaptureShards> shards =
          CaptureShards::Gather(comms[rr].get(), cap, bounds[rr + 1] - bounds[rr]);
      ASSERT_TRUE(shards.ok()) << shards.status();
      EXPECT_EQ(shards->ExpertTokens(), one->ExpertTokens());
      EXPECT_EQ(shards->ForLinear("self_attn.o_proj").first, bounds[rr]);
      EXPECT_EQ(shards->ForLinear("self_attn.o_proj").total, bounds.back());
      for (int e = 0; e < kExperts; ++e) {
        const std::string name = ExpertLinearName(MoeStyle::kQwen3, e, ExpertProj::kDown);
        const RowShard& shard = shards->ForLinear(name);
        EXPECT_EQ(shard.total, whole.moe->down_input[static_cast<size_t>(e)].dim(0));
        absl::StatusOr<Tensor> got =
            ShardedClipTokens(comms[rr].get(), shard, cap.moe->down_input[static_cast<size_t>(e)]);
        ASSERT_TRUE(got.ok()) << got.status();
        const Tensor want = SampleClipTokens(whole.moe->down_input[static_cast<size_t>(e)]);
        EXPECT_EQ(got->shape, want.shape) << "expert " << e;
        EXPECT_EQ(got->data, want.data) << "expert " << e << ", rank " << r;
      }
    });
  }
  for (std::thread& t : threads) t.join();
}

TEST(CaptureShardsTest, ARankWithoutAnExpertsTokensHoldsZeroRowsOfIt) {
  // Rank 1's two tokens both go to experts 0 and 1: it holds no row of expert 2.
  const std::vector<int32_t> rank0 = {2, 0, 1, 2, 0, 1};
  const std::vector<int32_t> rank1 = {0, 1, 1, 0};
  auto comms = CreateInProcessGroup(2);
  std::vector<absl::StatusOr<CaptureShards>> got(2, absl::UnknownError("not run"));
  std::thread other([&] {
    LayerCapture cap = CaptureOf(rank1, 3);
    got[1] = CaptureShards::Gather(comms[1].get(), cap, 2);
  });
  got[0] = CaptureShards::Gather(comms[0].get(), CaptureOf(rank0, 0), 3);
  other.join();
  ASSERT_TRUE(got[0].ok() && got[1].ok());
  const std::string two = ExpertLinearName(MoeStyle::kQwen3, 2, ExpertProj::kGate);
  EXPECT_EQ(got[1]->ForLinear(two).rows, 0);
  EXPECT_EQ(got[1]->ForLinear(two).total, 2);
  EXPECT_EQ(got[0]->ExpertTokens(), (std::vector<int64_t>{4, 4, 2}));
  EXPECT_EQ(got[1]->ExpertTokens(), (std::vector<int64_t>{4, 4, 2}));
}

}  // namespace
}  // namespace quantd::engine
