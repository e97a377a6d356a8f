// The in-process communicator of data-parallel calibration: every rank leaves a collective with
// the same bytes, a rank that stops does not leave the others blocked, ranks out of step fail.
#include "parallel/communicator.h"

#include <atomic>
#include <cmath>
#include <functional>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace quantd::engine {
namespace {

// Runs fn(rank) on one thread per rank of `comms`.
void OnEveryRank(const std::vector<std::unique_ptr<Communicator>>& comms,
                 const std::function<void(Communicator&)>& fn) {
  std::vector<std::thread> threads;
  for (const auto& comm : comms) threads.emplace_back([&fn, c = comm.get()] { fn(*c); });
  for (std::thread& t : threads) t.join();
}

TEST(InProcessCommunicatorTest, AllReduceSumGivesEveryRankTheSameSumInRankOrder) {
  constexpr int kRanks = 4;
  auto comms = CreateInProcessGroup(kRanks);
  std::vector<std::vector<double>> doubles(kRanks);
  std::vector<std::vector<float>> floats(kRanks);
  OnEveryRank(comms, [&](Communicator& c) {
    const int r = c.rank();
    // Magnitudes far apart: the result depends on the order of the sum.
    doubles[r] = {1.0 + r, std::pow(10.0, 8 * r), -3.0 * r};
    floats[r] = {0.1f * static_cast<float>(r + 1), r == 0 ? 1e8f : 1.0f};
    for (int round = 0; round < 3; ++round) {  // the group is reused call after call
      std::vector<double> d = doubles[r];
      ASSERT_TRUE(c.AllReduceSum(absl::MakeSpan(d)).ok());
      if (round == 2) doubles[r] = d;
    }
    ASSERT_TRUE(c.AllReduceSum(absl::MakeSpan(floats[r])).ok());
  });
  double d0 = 0, d1 = 0;
  float f0 = 0, f1 = 0;
  for (int r = 0; r < kRanks; ++r) {
    d0 += 1.0 + r;
    d1 += std::pow(10.0, 8 * r);
    f0 += 0.1f * static_cast<float>(r + 1);
    f1 += r == 0 ? 1e8f : 1.0f;
  }
  for (int r = 0; r < kRanks; ++r) {
    EXPECT_EQ(doubles[r][0], d0);
    EXPECT_EQ(doubles[r][1], d1);
    EXPECT_EQ(doubles[r][2], -18.0);
    EXPECT_EQ(floats[r][0], f0);  // bit for bit: rank order, on every rank
    EXPECT_EQ(floats[r][1], f1);
  }
}

TEST(InProcessCommunicatorTest, BroadcastAndBarrier) {
  auto comms = CreateInProcessGroup(3);
  std::vector<std::vector<int>> data(3);
  std::atomic<int> before{0};
  OnEveryRank(comms, [&](Communicator& c) {
    data[c.rank()] = {c.rank(), 10 * c.rank(), 7};
    ASSERT_TRUE(c.Broadcast(data[c.rank()].data(), 3 * sizeof(int), /*root=*/2).ok());
    ++before;
    ASSERT_TRUE(c.Barrier().ok());
    EXPECT_EQ(before.load(), 3);  // nobody passes the barrier before everyone reached it
  });
  for (const auto& d : data) EXPECT_EQ(d, (std::vector<int>{2, 20, 7}));
  EXPECT_FALSE(comms[0]->Broadcast(nullptr, 0, 3).ok());
}

TEST(InProcessCommunicatorTest, AGroupOfOneNeedsNoPartner) {
  auto comms = CreateInProcessGroup(1);
  std::vector<double> v = {1.5, -2.0};
  ASSERT_TRUE(comms[0]->AllReduceSum(absl::MakeSpan(v)).ok());
  ASSERT_TRUE(comms[0]->Barrier().ok());
  EXPECT_EQ(v, (std::vector<double>{1.5, -2.0}));
  EXPECT_EQ(comms[0]->size(), 1);
}

TEST(InProcessCommunicatorTest, AbortWakesRanksWaitingInACollective) {
  auto comms = CreateInProcessGroup(3);
  std::vector<absl::Status> status(3);
  OnEveryRank(comms, [&](Communicator& c) {
    if (c.rank() == 1) {  // stops instead of reducing
      c.Abort(absl::CancelledError("rank 1 was cancelled"));
      status[1] = absl::CancelledError("rank 1 was cancelled");
      return;
    }
    std::vector<float> v = {1.0f};
    status[c.rank()] = c.AllReduceSum(absl::MakeSpan(v));
  });
  for (const absl::Status& s : status) {
    EXPECT_EQ(s.code(), absl::StatusCode::kCancelled) << s;
    EXPECT_NE(s.message().find("rank 1"), std::string::npos);
  }
  std::vector<float> later = {1.0f};
  EXPECT_EQ(comms[0]->AllReduceSum(absl::MakeSpan(later)).code(), absl::StatusCode::kCancelled);
}

TEST(InProcessCommunicatorTest, RanksOutOfStepFailInsteadOfMixingBuffers) {
  auto comms = CreateInProcessGroup(2);
  std::vector<absl::Status> status(2);
  OnEveryRank(comms, [&](Communicator& c) {
    std::vector<double> v(c.rank() == 0 ? 3 : 4, 1.0);
    status[c.rank()] = c.AllReduceSum(absl::MakeSpan(v));
  });
  for (const absl::Status& s : status) {
    EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << s;
    EXPECT_NE(s.message().find("out of step"), std::string::npos) << s;
  }
}

}  // namespace
}  // namespace quantd::engine
