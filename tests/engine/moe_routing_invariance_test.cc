// Routing is unchanged by AWQ scaling (issue 13): on the trained tiny-qwen3-moe-wp, layer 0 is
// quantized by the CPU backend, the scales it chose for the experts' input group are folded into
// a float copy of the layer, and every token's top-k experts are compared with the original
// layer's. With the router's columns scaled too (quantd) they agree; left unscaled (AutoAWQ)
// tokens move to other experts.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

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

TEST(MoeRoutingInvarianceTest, ChosenScalesLeaveTopKUnchangedOnlyWithTheRouterScaled) {
  const std::string dir = test_data::Path("models/tiny-qwen3-moe-wp/model");
  absl::StatusOr<ModelConfig> config = LoadModelConfig(dir);
  ASSERT_TRUE(config.ok()) << config.status();
  absl::StatusOr<std::unique_ptr<CheckpointReader>> reader = CheckpointReader::Open(dir);
  ASSERT_TRUE(reader.ok()) << reader.status();
  absl::StatusOr<Tensor> embedding = (*reader)->LoadEmbedding();
  ASSERT_TRUE(embedding.ok());
  absl::StatusOr<LayerWeights> layer = (*reader)->LoadLayer(*config, 0);
  ASSERT_TRUE(layer.ok()) << layer.status();

  // 4 blocks of 128 random token ids: layer 0's input is their embedding.
  std::mt19937 rng(5);
  std::uniform_int_distribution<int32_t> token(3, config->vocab_size - 1);
  std::vector<std::vector<int32_t>> blocks(4, std::vector<int32_t>(128));
  for (auto& b : blocks) {
    for (int32_t& t : b) t = token(rng);
  }
  std::unique_ptr<Backend> cpu = CreateCpuBackend();
  absl::StatusOr<std::unique_ptr<Activations>> act = cpu->Embed(*embedding, blocks);
  ASSERT_TRUE(act.ok());
  const Tensor hidden_in = static_cast<CpuActivations&>(**act).hidden();

  const DType md = config->compute_dtype;
  LayerQuantSettings settings{128, md, /*apply_clip=*/false};
  absl::StatusOr<QuantizedLayer> q =
      cpu->QuantizeLayer(*config, settings, *layer, act->get(), nullptr);
  ASSERT_TRUE(q.ok()) << q.status();
  const std::vector<ScalingGroup> groups = ScalingGroupsOf(*config);
  size_t moe_group = 0;
  while (moe_group < groups.size() && groups[moe_group].inspect != InspectedModule::kMoe) {
    ++moe_group;
  }
  ASSERT_LT(moe_group, groups.size());
  const std::vector<float>& s = q->scaling[moe_group].scales;
  ASSERT_GT(q->scaling[moe_group].ratio, 0.0) << "identity scales would test nothing";

  // The block input of the float layer: input + attention, then post_attention_layernorm.
  const LayerContext ctx = MakeLayerContext(*config, 0, md, 128);
  LayerCapture cap;
  Tensor h = hidden_in;
  ForwardDecoderLayer(ctx, *layer, &h, &cap);
  Tensor mid = hidden_in;
  AddInPlace(cap.attn_output, md, &mid);
  const float eps = static_cast<float>(config->rms_norm_eps);
  const Routing before = cap.moe->routing;

  int moved_scaled = -1, moved_unscaled = -1;
  for (bool scale_router : {true, false}) {
    LayerWeights scaled = *layer;
    settings.scale_router_inputs = scale_router;
    ApplyGroupScales(FoldedGroup(groups[moe_group], settings), s, md, config->norm, &scaled);
    const Tensor x = RmsNorm(mid, scaled.post_attention_layernorm, eps, md, config->norm);
    const Routing after = RouteBlock(config->moe, *scaled.moe, x, md);
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

}  // namespace
}  // namespace quantd::engine
