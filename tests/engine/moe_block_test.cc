// The sparse block on the host: routing (softmax top-k, renormalisation, tie order, each expert's
// token order), the block output against a per-token reference, Qwen2-MoE's gated shared expert,
// and the scale folding of the experts' input group: with the router scaled too the block and its
// routing are unchanged; left unscaled (AutoAWQ) the routing moves.
#include "backend/cpu/moe_block.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "awq/scaling_groups.h"
#include "backend/backend.h"
#include "backend/cpu/layer_ops.h"
#include "model/moe_layout.h"

namespace quantd::engine {
namespace {

Tensor Random(std::vector<int64_t> shape, float scale, std::mt19937* rng) {
  Tensor t(std::move(shape));
  std::normal_distribution<float> d(0.0f, scale);
  for (float& v : t.data) v = d(*rng);
  return t;
}

MoeConfig Config(MoeStyle style, int experts, int k, bool norm) {
  MoeConfig m;
  m.style = style;
  m.num_experts = experts;
  m.experts_per_token = k;
  m.expert_intermediate_size = 16;
  m.norm_topk_prob = norm;
  if (style == MoeStyle::kQwen2) m.shared_expert_intermediate_size = 24;
  return m;
}

MoeWeights RandomBlock(const MoeConfig& m, int64_t hidden, std::mt19937* rng) {
  MoeWeights w;
  w.router.weight = Random({m.num_experts, hidden}, 0.5f, rng);
  auto expert = [&](int64_t inter) {
    ExpertWeights x;
    x.gate_proj.weight = Random({inter, hidden}, 0.3f, rng);
    x.up_proj.weight = Random({inter, hidden}, 0.3f, rng);
    x.down_proj.weight = Random({hidden, inter}, 0.3f, rng);
    return x;
  };
  for (int e = 0; e < m.num_experts; ++e) w.experts.push_back(expert(m.expert_intermediate_size));
  if (m.has_shared_expert()) {
    w.shared_expert = expert(m.shared_expert_intermediate_size);
    LinearWeights g;
    g.weight = Random({1, hidden}, 0.5f, rng);
    w.shared_expert_gate = g;
  }
  return w;
}

Tensor SiluMul(const Tensor& gate, const Tensor& up, DType md) {
  return GatedActivation(gate, up, Activation::kSilu, md);
}

TEST(MoeRoutingTest, SoftmaxTopKAndRenormalisation) {
  Tensor logits({2, 4});
  logits.data = {1.0f, 3.0f, 2.0f, 0.0f,   //
                 0.5f, 0.5f, 0.5f, 0.5f};  // a four-way tie: lower indices first
  const float z = std::exp(1.0f) + std::exp(3.0f) + std::exp(2.0f) + 1.0f;
  const float p1 = std::exp(3.0f) / z, p2 = std::exp(2.0f) / z;
  Routing raw = RouteTokens(Config(MoeStyle::kQwen3, 4, 2, false), logits, DType::kF32);
  EXPECT_THAT(raw.expert, ::testing::ElementsAre(1, 2, 0, 1));
  EXPECT_NEAR(raw.weight[0], p1, 1e-6);
  EXPECT_NEAR(raw.weight[1], p2, 1e-6);
  EXPECT_NEAR(raw.weight[2], 0.25f, 1e-6);
  Routing norm = RouteTokens(Config(MoeStyle::kQwen3, 4, 2, true), logits, DType::kF32);
  EXPECT_NEAR(norm.weight[0], p1 / (p1 + p2), 1e-6);  // = softmax over the top-k logits
  EXPECT_NEAR(norm.weight[0] + norm.weight[1], 1.0f, 1e-6);
  EXPECT_NEAR(norm.weight[2], 0.5f, 1e-6);
  // Expert 1 is token 0's first choice and token 1's second: slot-major order, as torch.where
  // over transformers' [k, tokens] mask gathers them.
  EXPECT_THAT(norm.tokens_of[1], ::testing::ElementsAre(0, 1));
  EXPECT_THAT(norm.tokens_of[0], ::testing::ElementsAre(1));
  EXPECT_THAT(norm.tokens_of[3], ::testing::IsEmpty());
  EXPECT_THAT(TopExperts(logits.ptr(), 4, 2), ::testing::ElementsAre(1, 2));
  // Routing weights are rounded to md once, after the float32 renormalisation.
  Routing half = RouteTokens(Config(MoeStyle::kQwen3, 4, 2, true), logits, DType::kF16);
  EXPECT_EQ(half.weight[0], RoundTo(DType::kF16, p1 / (p1 + p2)));
}

// The block output equals, per token, Σ_j w_j · expert_j(x) over its top-k experts (plus the
// gated shared expert), computed one token at a time.
TEST(MoeBlockTest, ForwardMatchesPerTokenReference) {
  for (MoeStyle style : {MoeStyle::kQwen3, MoeStyle::kQwen2, MoeStyle::kMixtral}) {
    std::mt19937 rng(7);
    const MoeConfig m = Config(style, 6, 2, style != MoeStyle::kQwen2);
    const int64_t n = 40, h = 32;
    const MoeWeights w = RandomBlock(m, h, &rng);
    const Tensor x = Random({n, h}, 1.0f, &rng);
    const Routing r = RouteBlock(m, w, x, DType::kF32);
    MoeCapture cap;
    const Tensor y = MoeBlockForward(ViewOf(w), r, x, DType::kF32, &cap);
    int64_t routed = 0;
    for (int64_t t = 0; t < n; ++t) {
      Tensor row({1, h});
      std::copy_n(x.ptr() + t * h, h, row.ptr());
      std::vector<float> ref(static_cast<size_t>(h), 0.0f);
      for (int j = 0; j < m.experts_per_token; ++j) {
        const ExpertWeights& e = w.experts[static_cast<size_t>(r.expert[t * 2 + j])];
        const Tensor out = Linear(SiluMul(Linear(row, e.gate_proj, DType::kF32),
                                          Linear(row, e.up_proj, DType::kF32), DType::kF32),
                                  e.down_proj, DType::kF32);
        for (int64_t c = 0; c < h; ++c) ref[c] += r.weight[t * 2 + j] * out.data[c];
      }
      if (w.shared_expert.has_value()) {
        const ExpertWeights& s = *w.shared_expert;
        const Tensor out = Linear(SiluMul(Linear(row, s.gate_proj, DType::kF32),
                                          Linear(row, s.up_proj, DType::kF32), DType::kF32),
                                  s.down_proj, DType::kF32);
        const float g = Linear(row, *w.shared_expert_gate, DType::kF32).data[0];
        for (int64_t c = 0; c < h; ++c) ref[c] += out.data[c] / (1.0f + std::exp(-g));
      }
      for (int64_t c = 0; c < h; ++c) {
        EXPECT_NEAR(y.data[t * h + c], ref[c], 1e-4f * (1.0f + std::abs(ref[c])))
            << "token " << t << " channel " << c;
      }
    }
    for (size_t e = 0; e < cap.down_input.size(); ++e) {
      EXPECT_EQ(cap.down_input[e].empty() ? 0 : cap.down_input[e].dim(0),
                static_cast<int64_t>(r.tokens_of[e].size()));
      routed += static_cast<int64_t>(r.tokens_of[e].size());
    }
    EXPECT_EQ(routed, n * m.experts_per_token);
    EXPECT_EQ(cap.shared_down_input.empty(), !w.shared_expert.has_value());
  }
}

// Folding the experts' input-group scales: norm ÷ s and gate/up (and router, shared gate)
// columns × s reproduce the block and its routing; with the router left out (AutoAWQ) the same
// scales move tokens to other experts.
TEST(MoeBlockTest, ScaledRouterKeepsRoutingUnscaledRouterMovesIt) {
  std::mt19937 rng(11);
  const MoeConfig m = Config(MoeStyle::kQwen2, 8, 2, true);
  const int64_t n = 400, h = 32;
  const MoeWeights w = RandomBlock(m, h, &rng);
  const Tensor norm_in = Random({n, h}, 1.0f, &rng);
  Tensor norm({h}, 1.0f);
  std::vector<float> s(static_cast<size_t>(h));
  std::uniform_real_distribution<float> u(0.25f, 4.0f);
  for (float& v : s) v = u(rng);

  auto block_input = [&](const Tensor& norm_weight) {
    return RmsNorm(norm_in, norm_weight, 1e-6f, DType::kF32, NormKind::kRms);
  };
  const Tensor x = block_input(norm);
  const Routing r = RouteBlock(m, w, x, DType::kF32);
  const Tensor y = MoeBlockForward(ViewOf(w), r, x, DType::kF32, nullptr);

  // The family's experts-input group, folded as the backends fold it.
  ModelConfig config;
  config.hidden_size = static_cast<int>(h);
  config.num_attention_heads = 4;
  config.num_key_value_heads = 2;
  config.head_dim = 8;
  config.moe = m;
  const ScalingGroup group = MoeScalingGroups(config)[1];
  ASSERT_EQ(group.inspect, InspectedModule::kMoe);
  for (bool scale_router : {true, false}) {
    LayerWeights layer;
    layer.post_attention_layernorm = norm;
    layer.moe = w;
    LayerQuantSettings settings;
    settings.scale_router_inputs = scale_router;
    ApplyGroupScales(FoldedGroup(group, settings), s, DType::kF32, NormKind::kRms, &layer);
    const MoeWeights& ws = *layer.moe;
    const Tensor& scaled_norm = layer.post_attention_layernorm;
    const Tensor xs = block_input(scaled_norm);
    const Routing rs = RouteBlock(m, ws, xs, DType::kF32);
    int same = 0;
    for (int64_t t = 0; t < n; ++t) {
      same += rs.expert[t * 2] == r.expert[t * 2] && rs.expert[t * 2 + 1] == r.expert[t * 2 + 1];
    }
    if (scale_router) {
      EXPECT_EQ(same, n);
      const Tensor ys = MoeBlockForward(ViewOf(ws), rs, xs, DType::kF32, nullptr);
      for (int64_t i = 0; i < n * h; ++i) {
        ASSERT_NEAR(ys.data[i], y.data[i], 1e-4f * (1.0f + std::abs(y.data[i])));
      }
    } else {
      EXPECT_LT(same, n * 9 / 10) << "scales this uneven should move some tokens";
    }
  }
}

}  // namespace
}  // namespace quantd::engine
