// The quantizer's choices a job can make (awq/pseudo_quantize.h): symmetric quantization as
// AutoAWQ's pseudo_quantize_tensor(zero_point=False) computes it, per-channel groups, bfloat16
// scales for the final quantization — and the AWQ search's trials (scale grid, clip search) using
// the same scheme as the final quantization, as AutoAWQ's search does.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "awq/clip_search.h"
#include "awq/gemm_packing.h"
#include "awq/pseudo_quantize.h"
#include "awq/quantize_linear.h"
#include "awq/scale_search.h"
#include "core/dtype.h"
#include "core/tensor.h"

namespace quantd::engine {
namespace {

Tensor Random(int64_t rows, int64_t cols, uint32_t seed, DType md, float sd = 0.05f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, sd);
  Tensor t({rows, cols});
  for (float& v : t.data) v = RoundTo(md, dist(rng));
  return t;
}

// AutoAWQ's zero_point=False branch written out (spec/awq.md §6), in md arithmetic.
std::vector<float> SymmetricReference(std::vector<float> w, DType md, float* scale_out) {
  float amax = 0.0f;
  for (float v : w) amax = std::max(amax, std::fabs(v));
  const float scale = RoundTo(md, std::max(amax, RoundTo(md, 1e-5f)) * (1.0f / 7.0f));
  for (float& v : w) {
    const float q = std::clamp(std::nearbyint(RoundTo(md, v / scale)), -8.0f, 7.0f);
    v = RoundTo(md, q * scale);
  }
  *scale_out = scale;
  return w;
}

TEST(QuantSchemeTest, SymmetricGroupIsAutoAwqsAndStoresCodesPlusEight) {
  for (DType md : {DType::kF16, DType::kBF16, DType::kF32}) {
    Tensor w = Random(1, 128, 3, md);
    w.data[7] = RoundTo(md, 0.4f);  // the largest magnitude: code 7 + 8
    w.data[9] = RoundTo(md, -0.4f);
    float ref_scale = 0.0f;
    const std::vector<float> ref = SymmetricReference(w.data, md, &ref_scale);
    std::vector<uint8_t> codes(128);
    float scale = 0.0f;
    uint8_t zero = 0;
    std::vector<float> got = w.data;
    PseudoQuantizeGroup(got.data(), 128, md, /*zero_point=*/false, codes.data(), &scale, &zero);
    EXPECT_EQ(got, ref);
    EXPECT_EQ(scale, ref_scale);
    EXPECT_EQ(zero, kSymmetricZero);
    EXPECT_EQ(codes[7], 15);
    EXPECT_EQ(codes[9], 1);  // −0.4 / (0.4 / 7) = −7 → code 1 (−8 is never reached from |w|)
    for (int i = 0; i < 128; ++i) {
      EXPECT_EQ(RoundTo(md, (static_cast<float>(codes[i]) - 8.0f) * scale), got[i]) << i;
    }
  }
}

TEST(QuantSchemeTest, SymmetricAndAsymmetricDiffer) {
  Tensor w = Random(4, 128, 5, DType::kF16);
  for (int i = 0; i < 128; ++i) w.data[i] = RoundTo(DType::kF16, std::fabs(w.data[i]));  // skewed
  Tensor a = w, s = w;
  PseudoQuantize(a.ptr(), 4, 128, QuantScheme{128, true}, DType::kF16);
  PseudoQuantize(s.ptr(), 4, 128, QuantScheme{128, false}, DType::kF16);
  EXPECT_NE(a.data, s.data);
}

TEST(QuantSchemeTest, PerChannelIsOneGroupPerRow) {
  Tensor w = Random(3, 96, 7, DType::kF16);  // 96 columns: no group size of 32/64/128 needed
  Tensor per_channel = w, whole_row = w;
  std::vector<float> scales(3);
  PseudoQuantize(per_channel.ptr(), 3, 96, QuantScheme{-1, true}, DType::kF16,
                 {.scales = scales.data()});
  PseudoQuantize(whole_row.ptr(), 3, 96, QuantScheme{96, true}, DType::kF16);
  EXPECT_EQ(per_channel.data, whole_row.data);
  EXPECT_EQ(QuantScheme{-1}.GroupFor(96), 96);
  EXPECT_EQ(QuantScheme{32}.GroupFor(96), 32);
}

TEST(QuantSchemeTest, Bfloat16ScalesQuantizeInBfloat16AndDequantizeThere) {
  LinearWeights linear{Random(16, 128, 9, DType::kBF16), Tensor({16}, 0.125f)};
  const GemmPackedLinear p = QuantizeLinearGemm(linear, QuantScheme{64, true}, DType::kBF16);
  EXPECT_EQ(p.scale_dtype, DType::kBF16);
  const UnpackedLinear u = UnpackGemm(p);
  for (float s : u.scales) EXPECT_EQ(RoundTo(DType::kBF16, s), s);
  // The codes are those of quantizing the bfloat16 weight in bfloat16 arithmetic.
  Tensor w = linear.weight;
  std::vector<uint8_t> codes(16 * 128);
  PseudoQuantize(w.ptr(), 16, 128, QuantScheme{64, true}, DType::kBF16, {.codes = codes.data()});
  EXPECT_EQ(u.codes, codes);
  const Tensor dq = DequantizeGemm(p);
  EXPECT_EQ(dq.data, w.data);  // (q − z) · s rounded to bfloat16 = the pseudo-quantized weight
  ASSERT_TRUE(p.bias.has_value());
  EXPECT_EQ(FromHalfBits(DType::kBF16, (*p.bias)[0]), 0.125f);
}

TEST(QuantSchemeTest, SymmetricFinalQuantizationPacksZeroEight) {
  LinearWeights linear{Random(8, 64, 11, DType::kF16), std::nullopt};
  const GemmPackedLinear p = QuantizeLinearGemm(linear, QuantScheme{32, false});
  for (int32_t word : p.qzeros) EXPECT_EQ(static_cast<uint32_t>(word), 0x88888888u);
  Tensor w = linear.weight;
  PseudoQuantize(w.ptr(), 8, 64, QuantScheme{32, false}, DType::kF16);
  EXPECT_EQ(DequantizeGemm(p).data, w.data);
}

TEST(QuantSchemeTest, ScaleSearchTrialsUseTheScheme) {
  // Q(W·s)/s with s = 1 is the plain quantizer of the scheme, symmetric or per-channel.
  const Tensor w = Random(8, 128, 13, DType::kF16);
  const std::vector<float> ones(128, 1.0f);
  for (const QuantScheme scheme : {QuantScheme{128, false}, QuantScheme{-1, true}}) {
    Tensor trial;
    ScaleQuantizeUnscale(w, ones, scheme, DType::kF16, &trial);
    Tensor expected = w;
    PseudoQuantize(expected.ptr(), 8, 128, scheme, DType::kF16);
    EXPECT_EQ(trial.data, expected.data);
  }
}

TEST(QuantSchemeTest, ClipSearchTrialsUseTheScheme) {
  // A row whose only large weight sits on a channel the inputs never use: both quantizers gain
  // from clipping it, and the per-channel search has one bound per row.
  Tensor w = Random(2, 128, 15, DType::kF32, 0.02f);
  w.data[5] = 1.0f;
  Tensor x = Random(600, 128, 16, DType::kF32, 1.0f);
  for (int64_t t = 0; t < 600; ++t) x.data[t * 128 + 5] = 0.0f;
  const Tensor sampled = SampleClipTokens(x);
  const ClipResult sym = SearchBestClip(w, sampled, QuantScheme{64, false}, DType::kF32);
  EXPECT_EQ(sym.max_val.dim(1), 2);
  EXPECT_GT(sym.shrink_index[0], 0);
  const ClipResult channel = SearchBestClip(w, sampled, QuantScheme{-1, true}, DType::kF32);
  EXPECT_EQ(channel.max_val.dim(1), 1);
  EXPECT_GT(channel.shrink_index[0], 0);
  EXPECT_LT(channel.max_val.data[0], 1.0f);
}

}  // namespace
}  // namespace quantd::engine
