// Tests of AutoAWQ's quantizer, GEMM packing, scale and clip search numerics (spec/awq.md §3–§7).
#include <cmath>
#include <random>
#include <vector>

#include "awq/apply_scale.h"
#include "awq/clip_search.h"
#include "awq/gemm_packing.h"
#include "awq/pseudo_quantize.h"
#include "awq/scale_search.h"
#include "core/fast_round.h"
#include "gtest/gtest.h"

namespace quantd::engine {
namespace {

Tensor RandomF16(int64_t rows, int64_t cols, uint32_t seed, float sigma = 0.05f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, sigma);
  Tensor t({rows, cols});
  for (float& v : t.data) v = RoundTo(DType::kF16, dist(rng));
  return t;
}

TEST(PseudoQuantizeTest, MinMaxGroupWithHalfEvenRounding) {
  // Range 0..1.5: scale = fp16(1.5 * (1/15)) = 0.1, zero = 0; 0.25/0.1 = 2.5 rounds to even 2,
  // 0.35/0.1 = 3.5 rounds to 4.
  std::vector<float> w = {0.0f, 1.5f, RoundTo(DType::kF32, 0.25f), 0.35f};
  uint8_t codes[4];
  float scale = 0;
  uint8_t zero = 0;
  PseudoQuantizeGroup(w.data(), 4, DType::kF32, /*zero_point=*/true, codes, &scale, &zero);
  EXPECT_FLOAT_EQ(scale, 1.5f * (1.0f / 15.0f));
  EXPECT_EQ(zero, 0);
  EXPECT_EQ(codes[0], 0);
  EXPECT_EQ(codes[1], 15);
  EXPECT_EQ(codes[2], static_cast<uint8_t>(std::nearbyint(0.25f / scale)));
  EXPECT_EQ(codes[3], static_cast<uint8_t>(std::nearbyint(0.35f / scale)));
  EXPECT_FLOAT_EQ(w[1], 15 * scale);
}

TEST(PseudoQuantizeTest, ZeroPointOfAllPositiveAndAllNegativeGroups) {
  std::vector<float> pos = {1.0f, 2.0f, 3.0f, 4.0f};
  std::vector<float> neg = {-1.0f, -2.0f, -3.0f, -4.0f};
  uint8_t zp = 9, zn = 9;
  uint8_t codes[4];
  PseudoQuantizeGroup(pos.data(), 4, DType::kF16, true, codes, nullptr, &zp);
  EXPECT_EQ(zp, 0);         // zero is not forced into [mn, mx]
  EXPECT_EQ(codes[3], 15);  // 4 / 0.2 = 20 saturates at 15
  PseudoQuantizeGroup(neg.data(), 4, DType::kF16, true, codes, nullptr, &zn);
  EXPECT_EQ(zn, 15);
}

TEST(PseudoQuantizeTest, DegenerateGroupUsesTinyScaleAndSaturates) {
  std::vector<float> w(8, 0.5f);
  float scale = 0;
  uint8_t zero = 7;
  uint8_t codes[8];
  PseudoQuantizeGroup(w.data(), 8, DType::kF16, true, codes, &scale, &zero);
  // fp16(1e-5) / 15 rounded to fp16: a subnormal around 6.56e-7.
  EXPECT_NEAR(scale, 6.56e-7f, 3e-8f);
  EXPECT_EQ(RoundTo(DType::kF16, scale), scale);
  EXPECT_EQ(zero, 0);
  EXPECT_EQ(codes[0], 15);  // 0.5 / scale overflows fp16 to inf and saturates
  EXPECT_FALSE(std::isnan(w[0]));
}

TEST(PseudoQuantizeTest, OutputIsRepresentableInModelDtypeAndErrorBounded) {
  Tensor w = RandomF16(16, 256, 1);
  Tensor orig = w;
  std::vector<float> scales(16 * 2);
  PseudoQuantize(w.ptr(), 16, 256, QuantScheme{128}, DType::kF16, {.scales = scales.data()});
  for (int64_t i = 0; i < w.numel(); ++i) {
    EXPECT_EQ(RoundTo(DType::kF16, w.data[i]), w.data[i]);
    const float s = scales[static_cast<size_t>((i / 256) * 2 + (i % 256) / 128)];
    EXPECT_LE(std::fabs(w.data[i] - orig.data[i]), 0.5f * s + 1e-3f);
  }
}

TEST(GemmPackingTest, NibbleOrderMatchesAutoAwq) {
  // One input row, 8 output channels with codes 0..7 → nibble i holds channel order[i].
  std::vector<uint8_t> codes(8 * 128, 0);
  for (int n = 0; n < 8; ++n) codes[n * 128] = static_cast<uint8_t>(n + 8);
  std::vector<uint8_t> zeros(8, 3);
  std::vector<float> scales(8, 0.5f);
  GemmPackedLinear p =
      PackGemm(codes.data(), zeros.data(), scales.data(), 8, 128, 128, std::nullopt);
  ASSERT_EQ(p.qweight.size(), 128u);
  const uint32_t word = static_cast<uint32_t>(p.qweight[0]);
  for (int i = 0; i < 8; ++i) EXPECT_EQ((word >> (4 * i)) & 0xF, 8u + kAwqPackOrder[i]);
  EXPECT_LT(p.qweight[0], 0);  // code 15 in nibble 7 sets the sign bit
  EXPECT_EQ(static_cast<uint32_t>(p.qzeros[0]), 0x33333333u);
}

TEST(GemmPackingTest, RoundTripThroughUnpackAndDequantize) {
  const int64_t out = 24, in = 256, group = 128;
  Tensor w = RandomF16(out, in, 7);
  std::vector<uint8_t> codes(out * in), zeros(out * 2);
  std::vector<float> scales(out * 2);
  Tensor bias({out}, 0.25f);
  PseudoQuantize(w.ptr(), out, in, QuantScheme{group}, DType::kF16,
                 {.codes = codes.data(), .scales = scales.data(), .zeros = zeros.data()});
  GemmPackedLinear p = PackGemm(codes.data(), zeros.data(), scales.data(), out, in, group, bias);
  EXPECT_EQ(p.qweight.size(), static_cast<size_t>(in * out / 8));
  EXPECT_EQ(p.qzeros.size(), static_cast<size_t>(2 * out / 8));
  EXPECT_EQ(p.scales.size(), static_cast<size_t>(2 * out));
  ASSERT_TRUE(p.bias.has_value());
  EXPECT_EQ(F16ToFloat((*p.bias)[3]), 0.25f);
  UnpackedLinear u = UnpackGemm(p);
  EXPECT_EQ(u.codes, codes);
  EXPECT_EQ(u.zeros, zeros);
  EXPECT_EQ(u.scales, scales);
  Tensor dq = DequantizeGemm(p);
  EXPECT_EQ(dq.data, w.data);  // (q − z) · s in fp16 equals the pseudo-quantized weight
}

TEST(ScaleSearchTest, RatioZeroIsInverseWeightMeanAndNormalised) {
  std::vector<float> x = {1.0f, 4.0f, 9.0f, 16.0f};
  std::vector<float> wm = {0.5f, 0.5f, 0.5f, 0.5f};
  std::vector<float> s0 = ScalesForRatio(x, wm, 0.0, DType::kF32);
  for (float v : s0) EXPECT_FLOAT_EQ(v, 1.0f);  // constant before normalisation → all ones
  std::vector<float> s5 = ScalesForRatio(x, {1, 1, 1, 1}, 0.5, DType::kF32);
  // sqrt(x) / (1 + 1e-4) normalised by sqrt(max · min): geometric mean of extremes is 1.
  EXPECT_NEAR(s5[0] * s5[3], 1.0f, 1e-5f);
  EXPECT_NEAR(s5[1] / s5[0], 2.0f, 1e-5f);
}

TEST(ScaleSearchTest, InfAndNanBecomeOne) {
  // A zero channel mean with ratio 0.95: x^r = 0 → clamped to 1e-4; min is tiny and a huge
  // x overflows fp16 after normalisation.
  std::vector<float> x = {0.0f, 60000.0f};
  std::vector<float> wm = {1e-3f, 1e-3f};
  std::vector<float> s = ScalesForRatio(x, wm, 0.95, DType::kF16);
  for (float v : s) EXPECT_FALSE(std::isnan(v) || std::isinf(v));
}

TEST(ScaleSearchTest, StrictLessKeepsEarliestTie) {
  std::vector<float> x(128, 1.0f), wm(128, 0.5f);
  int calls = 0;
  auto result = SearchBestScale(x, wm, DType::kF16, [&](const std::vector<float>&) {
    ++calls;
    return absl::StatusOr<double>(calls == 3 || calls == 7 ? 1.0 : 2.0);
  });
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(calls, kScaleGridPoints);
  EXPECT_EQ(result->best_index, 2);
  EXPECT_DOUBLE_EQ(result->best_ratio, 0.1);
}

TEST(ScaleSearchTest, AllNanLossesAreAnError) {
  std::vector<float> x(128, 1.0f), wm(128, 0.5f);
  auto result = SearchBestScale(x, wm, DType::kF16, [](const std::vector<float>&) {
    return absl::StatusOr<double>(std::nan(""));
  });
  EXPECT_FALSE(result.ok());
}

// The CUDA backend computes the grid once and picks from its losses: NaN losses never win, the
// winner's scale vector is the grid's, which is ScalesForRatio at the winning ratio.
TEST(ScaleSearchTest, PickBestScaleTakesTheWinnersGridVector) {
  std::vector<float> x(128), wm(128, 0.5f);
  for (size_t j = 0; j < x.size(); ++j) x[j] = 0.01f * static_cast<float>(j + 1);
  std::vector<std::vector<float>> grid = GridScales(x, wm, DType::kBF16);
  ASSERT_EQ(grid.size(), static_cast<size_t>(kScaleGridPoints));
  std::vector<double> losses(kScaleGridPoints, 3.0);
  losses[4] = std::nan("");
  losses[9] = 1.5;
  losses[13] = 1.5;
  auto result = PickBestScale(grid, losses);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->best_index, 9);
  EXPECT_DOUBLE_EQ(result->best_ratio, 0.45);
  EXPECT_EQ(result->scales, ScalesForRatio(x, wm, 0.45, DType::kBF16));
  EXPECT_EQ(result->losses.size(), static_cast<size_t>(kScaleGridPoints));
}

TEST(ScaleSearchTest, WeightMeanNormalisesByGroupMax) {
  Tensor a({1, 4});
  a.data = {1.0f, -2.0f, 0.5f, 0.25f};
  Tensor b({1, 4});
  b.data = {0.0f, 1.0f, 1.0f, 1.0f};
  std::vector<float> m = WeightMean({&a, &b}, 2, DType::kF32);
  EXPECT_NEAR(m[0], (0.5f + 0.0f) / 2, 1e-6f);
  EXPECT_NEAR(m[1], (1.0f + 1.0f) / 2, 1e-5f);
  EXPECT_NEAR(m[2], (1.0f + 1.0f) / 2, 1e-5f);
  EXPECT_NEAR(m[3], (0.5f + 1.0f) / 2, 1e-5f);
}

TEST(ApplyScaleTest, FoldingKeepsTheProductUnchanged) {
  LinearWeights prev{RandomF16(8, 4, 3), Tensor({8}, 1.0f)};
  Tensor next = RandomF16(4, 4, 4);
  std::vector<float> s = {2.0f, 0.5f, 4.0f, 1.0f};
  Tensor x({1, 4});
  x.data = {1.0f, 2.0f, 3.0f, 4.0f};
  DivideLinearRows(s, DType::kF32, &prev);  // the last 4 rows only
  EXPECT_FLOAT_EQ((*prev.bias).data[0], 0.5f);
  MultiplyColumns(s, DType::kF32, &next);
  DivideInputs(s, DType::kF32, &x);
  EXPECT_FLOAT_EQ(x.data[2], 0.75f);
}

TEST(ClipSearchTest, SamplesEveryStepThToken) {
  Tensor x({1030, 2});
  for (int64_t i = 0; i < 1030; ++i) x.data[i * 2] = static_cast<float>(i);
  Tensor s = SampleClipTokens(x);
  EXPECT_EQ(s.dim(0), 515);  // step 2
  EXPECT_EQ(s.data[2 * 3], 6.0f);
  Tensor small({10, 2});
  EXPECT_EQ(SampleClipTokens(small).dim(0), 10);
}

TEST(ClipSearchTest, ClipsAnOutlierThatHurtsTheRestOfTheGroup) {
  // One row whose group has a lone large weight on a channel the inputs never use: clipping it
  // shrinks the scale for the rest and lowers the error, so a bound < max is chosen.
  const int64_t group = 128;
  Tensor w = RandomF16(2, group, 11, 0.02f);
  w.data[5] = 1.0f;
  Tensor x = RandomF16(600, group, 12, 1.0f);
  for (int64_t t = 0; t < 600; ++t) x.data[t * group + 5] = 0.0f;
  ClipResult r = SearchBestClip(w, SampleClipTokens(x), QuantScheme{group}, DType::kF32);
  EXPECT_EQ(r.shrink_index[0], kClipShrinkSteps - 1);
  EXPECT_LT(r.max_val.data[0], 1.0f);
  ApplyClip(r.max_val, group, &w);
  EXPECT_LE(w.data[5], r.max_val.data[0]);
}

TEST(FastRoundTest, AgreesWithExactConversionsEverywhere) {
  std::mt19937 rng(5);
  std::uniform_int_distribution<uint32_t> bits;
  for (int i = 0; i < 2000000; ++i) {
    const float v = BitsToFloat(bits(rng));
    for (DType t : {DType::kF16, DType::kBF16}) {
      const float a = FastRoundTo(t, v);
      const float b = RoundTo(t, v);
      ASSERT_TRUE(a == b || (std::isnan(a) && std::isnan(b)) || (a == 0 && b == 0))
          << v << " " << static_cast<int>(t);
    }
  }
  for (float v : {65504.0f, 65519.0f, 65520.0f, 6.1035156e-05f, 6.0e-05f, 1e-8f, -2.5f}) {
    EXPECT_EQ(FastRoundTo(DType::kF16, v), RoundTo(DType::kF16, v)) << v;
  }
}

}  // namespace
}  // namespace quantd::engine
