// The engine's GPU memory plan (quantd/memory_plan), which the CUDA backend chunks by and the
// server's scheduler places by: the plans docs/cuda.md records from real runs, the smallest GPU a
// job fits as the plan's own boundary, and the hidden-states rule.
#include "quantd/memory_plan/memory_plan.h"

#include "gtest/gtest.h"

namespace quantd::memory_plan {
namespace {

constexpr double kGiBd = 1024.0 * 1024.0 * 1024.0;
constexpr LayerGeometry kQwen05b{896, 4864, 14, 2, 64, 2};
constexpr LayerGeometry kQwen7b{3584, 18944, 28, 4, 128, 2};
constexpr LayerGeometry kMixtral{4096, 14336, 32, 8, 128, 2, 8, 2, 14336, 0};
constexpr LayerGeometry kQwen3Moe{2048, 6144, 32, 4, 128, 2, 128, 8, 768, 0};

TEST(MemoryPlanTest, ReproducesThePlansOfRecordedRuns) {
  // docs/cuda.md, Qwen2.5-7B at 256 x 2048 on an H100: "524288 calibration tokens in 3 chunks of
  // 89 blocks (hidden states on the GPU ...)" with 71.6 GiB free after the 7.0 GiB of states.
  const RunPlan seven = PlanRun(kQwen7b, 256, 2048, (71.6 + 7.0) * kGiBd);
  EXPECT_FALSE(seven.hidden_on_host);
  EXPECT_FALSE(seven.in_place);
  EXPECT_EQ(seven.chunk_blocks, 89);
  EXPECT_EQ(seven.chunks, 3);
  // Qwen2.5-0.5B at 128 x 512 is resident on any large GPU.
  const RunPlan small = PlanRun(kQwen05b, 128, 512, 78.0 * kGiBd);
  EXPECT_TRUE(small.in_place);
  EXPECT_EQ(small.chunks, 1);
  EXPECT_LT(small.planned_bytes, 10 * kGiBd);
}

TEST(MemoryPlanTest, SmallestGpuIsTheBoundaryOfThePlan) {
  for (const auto& [g, blocks, len] : {std::tuple{kQwen05b, int64_t{128}, int64_t{512}},
                                       std::tuple{kQwen05b, int64_t{2048}, int64_t{2048}},
                                       std::tuple{kQwen7b, int64_t{256}, int64_t{2048}},
                                       std::tuple{kQwen7b, int64_t{1}, int64_t{2048}}}) {
    const double smallest = static_cast<double>(SmallestGpuBytes(g, blocks, len));
    EXPECT_TRUE(PlanRun(g, blocks, len, AvailableOnGpu(smallest, 0)).fits())
        << g.hidden_size << " " << blocks << "x" << len;
    EXPECT_FALSE(PlanRun(g, blocks, len, AvailableOnGpu(smallest - 64 * 1024 * 1024, 0)).fits())
        << g.hidden_size << " " << blocks << "x" << len;
  }
  // The calibration size moves the smallest GPU little: chunks of one block are always possible.
  EXPECT_LT(SmallestGpuBytes(kQwen7b, 256, 2048), 16 * kGiBd);
  EXPECT_GT(SmallestGpuBytes(kQwen7b, 256, 2048), 8 * kGiBd);
}

TEST(MemoryPlanTest, ALayerTooLargeToStageIsHeldAlone) {
  // Mixtral-8x7B: 1.45 B parameters a layer, 8.1 GiB of float32 masters and bfloat16 operands;
  // docs/perf.md measured 42.1 GiB on an H200 with two of them (the current and the staged one).
  const MemoryEstimate mixtral = EstimateMemory(kMixtral);
  EXPECT_NEAR(mixtral.weights / kGiBd, 8.1, 0.05);
  EXPECT_EQ(LayersInFlight(mixtral), 1);
  const RunPlan one = PlanRun(kMixtral, 128, 512, AvailableOnGpu(139.8 * kGiBd, 0));
  EXPECT_EQ(one.layers_in_flight, 1);
  EXPECT_TRUE(one.in_place);
  EXPECT_NEAR(one.planned_bytes,
              one.hidden_device_bytes + one.capture_bytes + one.scratch_bytes + one.weights_bytes,
              1.0);
  EXPECT_LT(one.planned_bytes, 40 * kGiBd);  // issue 13's bound
  // Qwen3-30B-A3B (3.5 GiB a layer), the dense models and their recorded plans keep two.
  EXPECT_EQ(LayersInFlight(EstimateMemory(kQwen3Moe)), 2);
  EXPECT_EQ(PlanRun(kQwen3Moe, 256, 512, AvailableOnGpu(139.8 * kGiBd, 0)).layers_in_flight, 2);
  EXPECT_EQ(LayersInFlight(EstimateMemory(kQwen7b)), 2);
  // The smallest GPU is still the plan's own boundary.
  const double smallest = static_cast<double>(SmallestGpuBytes(kMixtral, 128, 512));
  EXPECT_TRUE(PlanRun(kMixtral, 128, 512, AvailableOnGpu(smallest, 0)).fits());
  EXPECT_FALSE(PlanRun(kMixtral, 128, 512, AvailableOnGpu(smallest - 64 * 1024 * 1024, 0)).fits());
}

TEST(MemoryPlanTest, LargeCalibrationKeepsTheHiddenStatesOnTheHost) {
  // 0.5B at the seed's scale (2048 blocks of 2048): 15 GiB of states, two copies over a quarter
  // of an 80 GiB GPU, so pinned host memory, and chunks beside them.
  const RunPlan p = PlanRun(kQwen05b, 2048, 2048, AvailableOnGpu(80 * kGiBd, 0));
  EXPECT_TRUE(p.hidden_on_host);
  EXPECT_TRUE(p.fits());
  EXPECT_GT(p.chunks, 1);
  EXPECT_EQ(p.hidden_device_bytes, 0.0);
  EXPECT_LE(p.planned_bytes, AvailableOnGpu(80 * kGiBd, 0));
  // A forced chunk size and a decided placement are honoured (tests, the backend's embedding).
  const RunPlan forced = PlanRun(kQwen05b, 16, 512, 80 * kGiBd, {3, true});
  EXPECT_EQ(forced.chunk_blocks, 3);
  EXPECT_EQ(forced.chunks, 6);
  EXPECT_TRUE(forced.hidden_on_host);
}

}  // namespace
}  // namespace quantd::memory_plan
