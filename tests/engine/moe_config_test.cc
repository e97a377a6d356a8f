// MoE families' config.json in both transformers styles, their layer layout and AutoAWQ's groups,
// and clear errors naming the field.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "model/architecture.h"
#include "model/model_config.h"
#include "model/moe_layout.h"
#include "tests/testing/test_data.h"

namespace quantd::engine {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

nlohmann::json ReadJson(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in, nullptr, false);
}

// A Qwen3-MoE config in the Hub's transformers-4 style.
nlohmann::json Qwen3Moe4() {
  return ReadJson(test_data::Path("models/tiny-qwen3-moe-wp/model/config.json"));
}

TEST(MoeConfigTest, TinyQwen3MoeTransformers4Style) {
  absl::StatusOr<ModelConfig> c =
      LoadModelConfig(test_data::Path("models/tiny-qwen3-moe-wp/model"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_STREQ(c->arch->name, "qwen3_moe");
  EXPECT_TRUE(c->qk_norm);
  EXPECT_FALSE(c->attention_bias);
  const MoeConfig& m = c->moe;
  EXPECT_EQ(m.style, MoeStyle::kQwen3);
  EXPECT_EQ(m.num_experts, 8);
  EXPECT_EQ(m.experts_per_token, 2);
  EXPECT_EQ(m.expert_intermediate_size, 256);
  EXPECT_TRUE(m.norm_topk_prob);
  EXPECT_FALSE(m.has_shared_expert());
}

TEST(MoeConfigTest, Transformers5StyleParsesTheSame) {
  nlohmann::json j = Qwen3Moe4();
  j["num_local_experts"] = j["num_experts"];
  j.erase("num_experts");
  j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", j["rope_theta"]}};
  j.erase("rope_theta");
  j.erase("rope_scaling");
  j["dtype"] = j["torch_dtype"];
  j.erase("torch_dtype");
  absl::StatusOr<ModelConfig> c = ParseModelConfig(j, "v5/config.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->moe.num_experts, 8);
  EXPECT_EQ(c->moe.experts_per_token, 2);
  EXPECT_DOUBLE_EQ(c->rope_theta, 10000.0);
  EXPECT_EQ(c->dtype, DType::kF16);
}

TEST(MoeConfigTest, ExpertCountsThatDisagreeAreAnError) {
  nlohmann::json j = Qwen3Moe4();
  j["num_local_experts"] = 16;
  absl::Status s = ParseModelConfig(j, "/m/config.json").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("num_local_experts"));
  EXPECT_THAT(s.message(), HasSubstr("/m/config.json"));
}

TEST(MoeConfigTest, MissingOrInconsistentFieldsNameTheField) {
  nlohmann::json j = Qwen3Moe4();
  j.erase("moe_intermediate_size");
  EXPECT_THAT(ParseModelConfig(j, "c").status().message(), HasSubstr("moe_intermediate_size"));
  j = Qwen3Moe4();
  j["num_experts_per_tok"] = 9;
  EXPECT_THAT(ParseModelConfig(j, "c").status().message(), HasSubstr("num_experts_per_tok"));
  j = Qwen3Moe4();
  j["mlp_only_layers"] = {7};
  EXPECT_THAT(ParseModelConfig(j, "c").status().message(), HasSubstr("mlp_only_layers"));
  j = Qwen3Moe4();
  j["architectures"] = {"Qwen2MoeForCausalLM"};
  EXPECT_THAT(ParseModelConfig(j, "c").status().message(),
              HasSubstr("shared_expert_intermediate_size"));
}

TEST(MoeConfigTest, ConfigsWithDenseLayersAreRefusedNamingTheField) {
  nlohmann::json j = Qwen3Moe4();
  j["decoder_sparse_step"] = 2;
  absl::Status s = ParseModelConfig(j, "c").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("decoder_sparse_step"));
  j = Qwen3Moe4();
  j["mlp_only_layers"] = {3};
  s = ParseModelConfig(j, "c").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("mlp_only_layers"));
  j = Qwen3Moe4();
  j["mlp_only_layers"] = nlohmann::json::array();  // the released models' value
  EXPECT_TRUE(ParseModelConfig(j, "c").ok());
}

TEST(MoeConfigTest, QwenMoeLayoutAndGroups) {
  absl::StatusOr<ModelConfig> c = ParseModelConfig(Qwen3Moe4(), "c");
  ASSERT_TRUE(c.ok()) << c.status();
  std::vector<std::string> names;
  for (const LayerTensorSpec& t : c->arch->layer_tensors(*c)) names.push_back(t.name);
  // Hugging Face state-dict order: attention, the block (router first), then the norms.
  ASSERT_EQ(names.size(), 4u + 2 + 1 + 8 * 3 + 2);
  EXPECT_EQ(names[6], "mlp.gate");
  EXPECT_EQ(names[7], "mlp.experts.0.gate_proj");
  EXPECT_EQ(names[9], "mlp.experts.0.down_proj");
  EXPECT_EQ(names.back(), "post_attention_layernorm");
  // The router is a float tensor, never a quantized Linear.
  for (const LinearSpec& l : LayerLinears(*c)) EXPECT_NE(l.name, "mlp.gate");
  EXPECT_EQ(LayerLinears(*c).size(), 4u + 8 * 3);

  const std::vector<ScalingGroup> g = c->arch->scaling_groups(*c);
  ASSERT_EQ(g.size(), 1u + 1 + 8);  // GQA: no v→o group
  EXPECT_EQ(g[1].label, "post_attention_layernorm->mlp.experts.*.gate_proj+mlp.experts.*.up_proj");
  EXPECT_EQ(g[1].inspect, InspectedModule::kMoe);
  EXPECT_EQ(g[1].linears.size(), 16u);
  EXPECT_THAT(g[1].float_consumers, ElementsAre("mlp.gate"));
  EXPECT_EQ(g[2].label, "mlp.experts.0.up_proj->mlp.experts.0.down_proj");
  EXPECT_EQ(g[2].input, "mlp.experts.0.down_proj");
  EXPECT_THAT(MoeUnquantizedModules(*c),
              ElementsAre("model.layers.0.mlp.gate", "model.layers.1.mlp.gate",
                          "model.layers.2.mlp.gate", "model.layers.3.mlp.gate"));
}

TEST(MoeConfigTest, MixtralAndQwen2Moe) {
  absl::StatusOr<ModelConfig> mixtral = ParseModelConfig(
      ReadJson(test_data::Path("configs/mixtral-8x7b-v0.1.config.json")), "mixtral");
  ASSERT_TRUE(mixtral.ok()) << mixtral.status();
  EXPECT_STREQ(mixtral->arch->name, "mixtral");
  EXPECT_EQ(mixtral->moe.style, MoeStyle::kMixtral);
  EXPECT_EQ(mixtral->moe.num_experts, 8);
  EXPECT_EQ(mixtral->moe.expert_intermediate_size, 14336);
  EXPECT_TRUE(mixtral->moe.norm_topk_prob);  // Mixtral always renormalises
  EXPECT_EQ(ExpertLinearName(MoeStyle::kMixtral, 3, ExpertProj::kUp),
            "block_sparse_moe.experts.3.w3");
  EXPECT_EQ(RouterName(MoeStyle::kMixtral), "block_sparse_moe.gate");
  // Registration order of an expert: w1, w2, w3.
  std::vector<std::string> names;
  for (const LinearSpec& l : LayerLinears(*mixtral)) names.push_back(l.name);
  EXPECT_EQ(names[4], "block_sparse_moe.experts.0.w1");
  EXPECT_EQ(names[5], "block_sparse_moe.experts.0.w2");
  EXPECT_EQ(names[6], "block_sparse_moe.experts.0.w3");
  const std::vector<ScalingGroup> g = mixtral->arch->scaling_groups(*mixtral);
  EXPECT_EQ(
      g[1].label,
      "post_attention_layernorm->block_sparse_moe.experts.*.w1+block_sparse_moe.experts.*.w3");
  EXPECT_EQ(g[2].label, "block_sparse_moe.experts.0.w3->block_sparse_moe.experts.0.w2");

  absl::StatusOr<ModelConfig> qwen3 =
      ParseModelConfig(ReadJson(test_data::Path("configs/qwen3-30b-a3b.config.json")), "qwen3-30b");
  ASSERT_TRUE(qwen3.ok()) << qwen3.status();
  EXPECT_EQ(qwen3->moe.num_experts, 128);
  EXPECT_EQ(qwen3->moe.experts_per_token, 8);
  EXPECT_EQ(qwen3->moe.expert_intermediate_size, 768);

  nlohmann::json q2 = Qwen3Moe4();
  q2["architectures"] = {"Qwen2MoeForCausalLM"};
  q2["shared_expert_intermediate_size"] = 512;
  q2.erase("norm_topk_prob");  // Qwen2MoeConfig's default: false
  absl::StatusOr<ModelConfig> qwen2 = ParseModelConfig(q2, "qwen2moe");
  ASSERT_TRUE(qwen2.ok()) << qwen2.status();
  EXPECT_EQ(qwen2->moe.style, MoeStyle::kQwen2);
  EXPECT_TRUE(qwen2->attention_bias);
  EXPECT_FALSE(qwen2->moe.norm_topk_prob);
  EXPECT_EQ(qwen2->moe.shared_expert_intermediate_size, 512);
  EXPECT_THAT(MoeUnquantizedModules(*qwen2),
              ::testing::Contains("model.layers.2.mlp.shared_expert_gate"));
  const std::vector<LinearSpec> linears = LayerLinears(*qwen2);
  ASSERT_EQ(linears.size(), 4u + 8 * 3 + 3);
  EXPECT_EQ(linears.back().name, "mlp.shared_expert.down_proj");
  EXPECT_EQ(linears.back().in, 512);
  const std::vector<ScalingGroup> g2 = qwen2->arch->scaling_groups(*qwen2);
  EXPECT_THAT(g2[1].float_consumers, ElementsAre("mlp.gate", "mlp.shared_expert_gate"));
  EXPECT_EQ(g2[1].linears.back(), "mlp.shared_expert.up_proj");
  EXPECT_EQ(g2.back().label, "mlp.shared_expert.up_proj->mlp.shared_expert.down_proj");
}

TEST(MoeConfigTest, NamesResolveToTheBlocksSlots) {
  LayerWeights w;
  EXPECT_EQ(FindLinear(std::as_const(w), "mlp.experts.3.up_proj"), nullptr);
  LinearWeights* up = FindLinear(&w, "mlp.experts.3.up_proj");
  ASSERT_NE(up, nullptr);
  ASSERT_TRUE(w.moe.has_value());
  EXPECT_EQ(w.moe->experts.size(), 4u);
  EXPECT_EQ(up, &w.moe->experts[3].up_proj);
  EXPECT_EQ(FindLinear(&w, "block_sparse_moe.experts.1.w2"), &w.moe->experts[1].down_proj);
  EXPECT_EQ(FindLinear(&w, "mlp.shared_expert.gate_proj"), &w.moe->shared_expert->gate_proj);
  EXPECT_EQ(FindFloatTensor(&w, "mlp.gate"), &w.moe->router.weight);
  EXPECT_EQ(FindFloatTensor(&w, "mlp.shared_expert_gate"), &w.moe->shared_expert_gate->weight);
  EXPECT_EQ(FindLinear(&w, "mlp.experts.x.up_proj"), nullptr);
  EXPECT_EQ(FindLinear(&w, "mlp.gate_proj"), &w.gate_proj);  // the dense MLP's, not the router
  EXPECT_EQ(ExpertOfLinear("block_sparse_moe.experts.7.w3"), 7);
  EXPECT_EQ(ExpertOfLinear("mlp.shared_expert.up_proj"), std::nullopt);
}

}  // namespace
}  // namespace quantd::engine
