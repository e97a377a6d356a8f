// The formats' rules (quantd/engine/format_options.h): every combination the formats or vLLM's
// kernels do not allow is refused naming the field and the rule; the allowed ones pass; module
// patterns match as AutoAWQ (substring) and compressed-tensors (re:) do.
#include "quantd/engine/format_options.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

namespace quantd::engine {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

QuantFormat Gemm() { return {}; }
QuantFormat CompressedTensors() {
  QuantFormat f;
  f.format = CheckpointFormat::kCompressedTensors;
  return f;
}

std::string Refusal(const QuantFormat& f) {
  absl::Status s = CheckQuantFormat(f);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  return std::string(s.message());
}

TEST(FormatOptionsTest, GroupSizesOfBothFormats) {
  for (int g : {32, 64, 128}) {
    QuantFormat f = Gemm();
    f.group_size = g;
    EXPECT_TRUE(CheckQuantFormat(f).ok()) << g;
    f = CompressedTensors();
    f.group_size = g;
    EXPECT_TRUE(CheckQuantFormat(f).ok()) << g;
  }
  QuantFormat f = CompressedTensors();
  f.group_size = kPerChannelGroup;
  EXPECT_TRUE(CheckQuantFormat(f).ok());
  for (int g : {0, 16, 96, 256, -2}) {
    f.group_size = g;
    EXPECT_THAT(Refusal(f), AllOf(HasSubstr("--group_size"), HasSubstr("32, 64, 128 or -1")));
  }
}

TEST(FormatOptionsTest, GemmRefusesPerChannelSymmetricAndBfloat16ScalesWithTheRule) {
  QuantFormat f = Gemm();
  f.group_size = kPerChannelGroup;
  EXPECT_THAT(Refusal(f), AllOf(HasSubstr("--group_size: -1 (per-channel) needs --format "
                                          "compressed-tensors"),
                                HasSubstr("per-channel form")));
  f = Gemm();
  f.zero_point = false;
  EXPECT_THAT(Refusal(f), AllOf(HasSubstr("--zero_point: false (symmetric)"),
                                HasSubstr("stores a zero point per group")));
  f = Gemm();
  f.scale_dtype = OutputDtype::kBFloat16;
  EXPECT_THAT(Refusal(f),
              AllOf(HasSubstr("--scale_dtype: bfloat16"), HasSubstr("computes in float16")));
  // bfloat16 float tensors stay allowed (vLLM's awq_marlin runs bfloat16); the scales are float16.
  f = Gemm();
  f.output_dtype = OutputDtype::kBFloat16;
  EXPECT_TRUE(CheckQuantFormat(f).ok());
  EXPECT_EQ(ScaleDtypeOf(f), OutputDtype::kFloat16);
}

TEST(FormatOptionsTest, CompressedTensorsScalesFollowTheModelDtype) {
  QuantFormat f = CompressedTensors();
  f.output_dtype = OutputDtype::kBFloat16;
  EXPECT_TRUE(CheckQuantFormat(f).ok());
  EXPECT_EQ(ScaleDtypeOf(f), OutputDtype::kBFloat16);
  f.zero_point = false;
  f.group_size = kPerChannelGroup;
  EXPECT_TRUE(CheckQuantFormat(f).ok());
  f = CompressedTensors();  // float16 model, bfloat16 scales
  f.scale_dtype = OutputDtype::kBFloat16;
  EXPECT_THAT(Refusal(f), AllOf(HasSubstr("--scale_dtype: bfloat16 with --dtype float16"),
                                HasSubstr("loads compressed-tensors' weight_scale into the "
                                          "model's dtype")));
  f = CompressedTensors();
  f.output_dtype = OutputDtype::kBFloat16;
  f.scale_dtype = OutputDtype::kFloat16;
  EXPECT_THAT(Refusal(f), HasSubstr("set --dtype float16"));
}

TEST(FormatOptionsTest, OnlyFourBits) {
  QuantFormat f = CompressedTensors();
  f.bits = 8;
  EXPECT_THAT(Refusal(f), HasSubstr("bits: 8 is not 4"));
}

TEST(FormatOptionsTest, FieldNamesComeFromTheCaller) {
  QuantFormat f = Gemm();
  f.zero_point = false;
  absl::Status s =
      CheckQuantFormat(f, {"spec.layout", "spec.bits", "spec.group_size", "spec.zero_point",
                           "spec.output_dtype", "spec.scale_dtype"});
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("spec.zero_point: false (symmetric) needs spec.layout compressed-tensors"));
}

TEST(FormatOptionsTest, ParsesNames) {
  EXPECT_EQ(ParseCheckpointFormat("gemm"), CheckpointFormat::kAwqGemm);
  EXPECT_EQ(ParseCheckpointFormat("compressed-tensors"), CheckpointFormat::kCompressedTensors);
  EXPECT_FALSE(ParseCheckpointFormat("marlin").has_value());
  EXPECT_EQ(ParseOutputDtype("bfloat16"), OutputDtype::kBFloat16);
  EXPECT_FALSE(ParseOutputDtype("float32").has_value());
}

TEST(FormatOptionsTest, ModulePatternsMatchAsSubstringOrAnchoredRegex) {
  EXPECT_TRUE(MatchesModulePattern("lm_head", "lm_head"));
  EXPECT_TRUE(MatchesModulePattern("model.layers.3.mlp.gate_proj", "mlp.gate"));  // substring
  EXPECT_TRUE(MatchesModulePattern("model.layers.3.mlp.down_proj", "re:.*down_proj$"));
  EXPECT_FALSE(MatchesModulePattern("model.layers.3.mlp.down_proj", "re:layers"));  // anchored
  EXPECT_TRUE(MatchesModulePattern("model.layers.3.mlp.down_proj", "re:model\\.layers\\.[0-3]\\."));
  EXPECT_FALSE(
      MatchesModulePattern("model.layers.13.mlp.down_proj", "re:model\\.layers\\.[0-3]\\."));
  EXPECT_FALSE(MatchesModulePattern("anything", ""));
  EXPECT_TRUE(CheckModulePatterns({"lm_head", "re:.*\\.mlp\\..*"}, "--m").ok());
  EXPECT_THAT(std::string(CheckModulePatterns({"re:(unclosed"}, "--m").message()),
              HasSubstr("--m: \"re:(unclosed\": the regex does not compile"));
  EXPECT_THAT(std::string(CheckModulePatterns({""}, "--m").message()),
              HasSubstr("is not a module name or pattern"));
}

TEST(FormatOptionsTest, PerplexityThresholdIsANonNegativePercentage) {
  EXPECT_TRUE(CheckPerplexityThreshold(0.0, "--t").ok());
  EXPECT_TRUE(CheckPerplexityThreshold(2.5, "--t").ok());
  EXPECT_FALSE(CheckPerplexityThreshold(-1.0, "--t").ok());
  EXPECT_FALSE(CheckPerplexityThreshold(std::nan(""), "--t").ok());
}

}  // namespace
}  // namespace quantd::engine
