// Routing is unchanged by AWQ scaling (issue 13): on the trained tiny-qwen3-moe-wp, layer 0 is
// quantized by the CPU backend, the scales it chose for the experts' input group are folded into
// a float copy of the layer, and every token's top-k experts are compared with the original
// layer's. With the router's columns scaled too (quantd) they agree; left unscaled (AutoAWQ)
// tokens move to other experts. And the float model is unchanged by all of the layer's scales
// together: scaled but not quantized, the decoder layer's output is the original's up to float16
// rounding (a fold error in the attention's q/k-norm path, the router or the experts would show).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "awq/scaling_groups.h"
#include "backend/backend.h"
#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/decoder_layer.h"
#include "backend/cpu/moe_block.h"
#include "io/checkpoint_reader.h"
#include "tests/testing/test_data.h"

namespace quantd::engine {
namespace {

// Layer 0 of tiny-qwen3-moe-wp quantized by the CPU backend (no clip) on 4 blocks of 128 random
// token ids (layer 0's input is their embedding): the original layer, its input and the result.
class MoeRoutingInvarianceTest : public ::testing::Test {
 protected:
  void QuantizeLayer0(uint32_t seed) {
    const std::string dir = test_data::Path("models/tiny-qwen3-moe-wp/model");
    absl::StatusOr<ModelConfig> config = LoadModelConfig(dir);
    ASSERT_TRUE(config.ok()) << config.status();
    config_ = *std::move(config);
    absl::StatusOr<std::unique_ptr<CheckpointReader>> reader = CheckpointReader::Open(dir);
    ASSERT_TRUE(reader.ok()) << reader.status();
    absl::StatusOr<Tensor> embedding = (*reader)->LoadEmbedding();
    ASSERT_TRUE(embedding.ok());
    absl::StatusOr<LayerWeights> layer = (*reader)->LoadLayer(config_, 0);
    ASSERT_TRUE(layer.ok()) << layer.status();
    layer_ = *std::move(layer);

    std::mt19937 rng(seed);
    std::uniform_int_distribution<int32_t> token(3, config_.vocab_size - 1);
    std::vector<std::vector<int32_t>> blocks(4, std::vector<int32_t>(128));
    for (auto& b : blocks) {
      for (int32_t& t : b) t = token(rng);
    }
    std::unique_ptr<Backend> cpu = CreateCpuBackend();
    absl::StatusOr<std::unique_ptr<Activations>> act = cpu->Embed(*embedding, blocks);
    ASSERT_TRUE(act.ok());
    hidden_in_ = static_cast<CpuActivations&>(**act).hidden();

    md_ = config_.compute_dtype;
    settings_ = LayerQuantSettings{128, md_, /*apply_clip=*/false};
    absl::StatusOr<QuantizedLayer> q =
        cpu->QuantizeLayer(config_, settings_, layer_, act->get(), nullptr);
    ASSERT_TRUE(q.ok()) << q.status();
    quantized_ = *std::move(q);
    groups_ = ScalingGroupsOf(config_);
    ASSERT_EQ(quantized_.scaling.size(), groups_.size());
  }

  ModelConfig config_;
  LayerWeights layer_;
  Tensor hidden_in_;
  DType md_ = DType::kF32;
  LayerQuantSettings settings_;
  QuantizedLayer quantized_;
  std::vector<ScalingGroup> groups_;
};

TEST_F(MoeRoutingInvarianceTest, ChosenScalesLeaveTopKUnchangedOnlyWithTheRouterScaled) {
  ASSERT_NO_FATAL_FAILURE(QuantizeLayer0(5));
  LayerQuantSettings settings = settings_;  // the router switch varies below
  size_t moe_group = 0;
  while (moe_group < groups_.size() && groups_[moe_group].inspect != InspectedModule::kMoe) {
    ++moe_group;
  }
  ASSERT_LT(moe_group, groups_.size());
  const std::vector<float>& s = quantized_.scaling[moe_group].scales;
  ASSERT_GT(quantized_.scaling[moe_group].ratio, 0.0) << "identity scales would test nothing";

  // The block input of the float layer: input + attention, then post_attention_layernorm.
  const LayerContext ctx = MakeLayerContext(config_, 0, md_, 128);
  LayerCapture cap;
  Tensor h = hidden_in_;
  ForwardDecoderLayer(ctx, layer_, &h, &cap);
  Tensor mid = hidden_in_;
  AddInPlace(cap.attn_output, md_, &mid);
  const float eps = static_cast<float>(config_.rms_norm_eps);
  const Routing before = cap.moe->routing;

  int moved_scaled = -1, moved_unscaled = -1;
  for (bool scale_router : {true, false}) {
    LayerWeights scaled = layer_;
    settings.scale_router_inputs = scale_router;
    ApplyGroupScales(FoldedGroup(groups_[moe_group], settings), s, md_, config_.norm, &scaled);
    const Tensor x = RmsNorm(mid, scaled.post_attention_layernorm, eps, md_, config_.norm);
    const Routing after = RouteBlock(config_.moe, *scaled.moe, x, md_);
    int moved = 0;
    for (int64_t t = 0; t < before.tokens; ++t) {
      std::vector<int32_t> a(before.expert.begin() + t * before.k,
                             before.expert.begin() + (t + 1) * before.k);
      std::vector<int32_t> b(after.expert.begin() + t * after.k,
                             after.expert.begin() + (t + 1) * after.k);
      std::sort(a.begin(), a.end());
      std::sort(b.begin(), b.end());
      moved += a != b;
    }
    (scale_router ? moved_scaled : moved_unscaled) = moved;
  }
  std::printf("tokens whose top-%d experts changed: router scaled %d / %lld, unscaled %d\n",
              before.k, moved_scaled, static_cast<long long>(before.tokens), moved_unscaled);
  // float16 rounding of norm ÷ s and router · s can only flip near-ties: at most 0.5 %.
  EXPECT_LE(moved_scaled * 200, before.tokens);
  EXPECT_GT(moved_unscaled, 4 * moved_scaled + 4);
}

// Per token, ‖a − b‖ / ‖a‖ over the hidden dimension.
std::vector<double> TokenRelativeErrors(const Tensor& a, const Tensor& b) {
  const int64_t h = a.dim(1);
  std::vector<double> errors;
  for (int64_t t = 0; t < a.dim(0); ++t) {
    double num = 0.0, den = 0.0;
    for (int64_t j = t * h; j < (t + 1) * h; ++j) {
      num += (static_cast<double>(a.data[j]) - b.data[j]) * (a.data[j] - b.data[j]);
      den += static_cast<double>(a.data[j]) * a.data[j];
    }
    errors.push_back(std::sqrt(num / den));
  }
  return errors;
}

// Issue 13's quality gap (docs/moe.md_) is not a fold error: every group's chosen scales folded
// into float layer 0 (norms ÷ s, consumers · s, the router's columns · s) leave the layer's
// output as it was, up to float16 rounding, on every token whose top-k experts the rounding does
// not flip (a near-tie: at most 0.5 %, as above) — far below the quantization error.
TEST_F(MoeRoutingInvarianceTest, AllChosenScalesFoldIntoTheFloatLayerExactly) {
  ASSERT_NO_FATAL_FAILURE(QuantizeLayer0(7));
  LayerWeights scaled = layer_;
  for (size_t i = 0; i < groups_.size(); ++i) {
    ApplyGroupScales(FoldedGroup(groups_[i], settings_), quantized_.scaling[i].scales, md_,
                     config_.norm, &scaled);
  }

  const LayerContext ctx = MakeLayerContext(config_, 0, md_, 128);
  Tensor original = hidden_in_, folded = hidden_in_, quantized = hidden_in_;
  ForwardDecoderLayer(ctx, layer_, &original, nullptr);
  ForwardDecoderLayer(ctx, scaled, &folded, nullptr);
  ForwardDecoderLayer(ctx, DequantizedLayer(quantized_), &quantized, nullptr);
  // Compared on the layer's own contribution (output − input): the residual would hide errors.
  for (Tensor* t : {&original, &folded, &quantized}) {
    for (int64_t i = 0; i < t->numel(); ++i) t->data[i] -= hidden_in_.data[i];
  }
  const std::vector<double> fold = TokenRelativeErrors(original, folded);
  const std::vector<double> quant = TokenRelativeErrors(original, quantized);
  int flipped = 0;
  double fold_worst = 0.0, quant_mean = 0.0;
  for (size_t t = 0; t < fold.size(); ++t) {
    quant_mean += quant[t] / static_cast<double>(fold.size());
    if (fold[t] > 1e-2) {
      ++flipped;  // a routing near-tie
    } else {
      fold_worst = std::max(fold_worst, fold[t]);
    }
  }
  std::printf(
      "layer 0 output, relative error per token: scales folded at most %.2e (%d of %zu tokens "
      "over 1e-2), quantized %.2e on average\n",
      fold_worst, flipped, fold.size(), quant_mean);
  EXPECT_LE(flipped * 200, static_cast<int>(fold.size()));
  EXPECT_LT(fold_worst, 5e-3);
  EXPECT_LT(fold_worst * 10, quant_mean);
}

}  // namespace
}  // namespace quantd::engine
