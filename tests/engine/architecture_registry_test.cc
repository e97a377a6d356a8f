// The family registry (model/registry.h): every family's real config.json parses with the
// features its family file promises, a config without "architectures" is taken through its
// model_type, anything else is refused with the supported list, each family's scaling groups only
// name tensors its layer has, and docs/architectures.md's table says what the registry says.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "io/json_file.h"
#include "model/architecture.h"
#include "model/layer_weights.h"
#include "model/model_config.h"
#include "model/registry.h"
#include "quantd/engine/model_support.h"
#include "testing/family_models.h"
#include "testing/io_random_model.h"
#include "tests/testing/test_data.h"

namespace quantd::engine {
namespace {

using ::testing::HasSubstr;

std::string DataConfig(const std::string& name) {
  return test_data::Path("configs/" + name + ".config.json");
}

ModelConfig ParseOrDie(const std::string& name) {
  absl::StatusOr<nlohmann::json> json = ReadJsonFile(DataConfig(name));
  EXPECT_TRUE(json.ok()) << json.status();
  absl::StatusOr<ModelConfig> c = ParseModelConfig(json.ok() ? *json : nlohmann::json(), name);
  EXPECT_TRUE(c.ok()) << name << ": " << c.status();
  return c.ok() ? *c : ModelConfig{};
}

std::vector<std::string> Labels(const ModelConfig& c) {
  std::vector<std::string> out;
  for (const ScalingGroup& g : c.arch->scaling_groups(c)) out.push_back(g.label);
  return out;
}

TEST(ArchitectureRegistryTest, Llama31RealConfig) {
  const ModelConfig c = ParseOrDie("llama-3.1-8b");
  ASSERT_NE(c.arch, nullptr);
  EXPECT_STREQ(c.arch->name, "llama");
  EXPECT_EQ(c.rope_scaling.type, RopeScaling::Type::kLlama3);
  EXPECT_EQ(c.attention(31).rope_scaling.type, RopeScaling::Type::kLlama3);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(c.max_sliding_window(), 0);
  // GQA: no v_proj -> o_proj group.
  EXPECT_THAT(Labels(c), ::testing::ElementsAre(
                             "input_layernorm->self_attn.q_proj+self_attn.k_proj+self_attn.v_proj",
                             "post_attention_layernorm->mlp.gate_proj+mlp.up_proj",
                             "mlp.up_proj->mlp.down_proj"));
}

TEST(ArchitectureRegistryTest, MistralRealConfigHasAWindowOnEveryLayer) {
  const ModelConfig c = ParseOrDie("mistral-7b-v0.1");
  ASSERT_NE(c.arch, nullptr);
  EXPECT_STREQ(c.arch->name, "mistral");
  for (int l = 0; l < c.num_hidden_layers; ++l) EXPECT_EQ(c.attention(l).sliding_window, 4096);
}

TEST(ArchitectureRegistryTest, Qwen3RealConfig) {
  const ModelConfig c = ParseOrDie("qwen3-0.6b");
  ASSERT_NE(c.arch, nullptr);
  EXPECT_STREQ(c.arch->name, "qwen3");
  EXPECT_TRUE(c.qk_norm);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_TRUE(c.tie_word_embeddings);
  const std::vector<TensorSpec> t = SourceLayerTensors(c, 0);
  EXPECT_EQ(t[4].name, "model.layers.0.self_attn.q_norm.weight");
}

TEST(ArchitectureRegistryTest, Gemma2RealConfig) {
  const ModelConfig c = ParseOrDie("gemma-2-2b");
  ASSERT_NE(c.arch, nullptr);
  EXPECT_STREQ(c.arch->name, "gemma2");
  EXPECT_EQ(c.norm, NormKind::kRmsOnePlusWeight);
  EXPECT_EQ(c.activation, Activation::kGeluTanh);
  EXPECT_TRUE(c.sandwich_norms);
  EXPECT_TRUE(c.scale_embeddings);
  EXPECT_TRUE(c.tie_word_embeddings);  // Gemma2Config's default
  EXPECT_FALSE(c.qk_norm);
  EXPECT_EQ(c.head_dim, 256);
  EXPECT_DOUBLE_EQ(c.query_pre_attn_scalar, 256.0);
  EXPECT_DOUBLE_EQ(c.attn_logit_softcapping, 50.0);
  EXPECT_DOUBLE_EQ(c.final_logit_softcapping, 30.0);
  EXPECT_EQ(c.dtype, DType::kF32);
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    EXPECT_EQ(c.attention(l).sliding_window, l % 2 == 0 ? 4096 : 0) << l;
  }
  const std::vector<LayerTensorSpec> floats = LayerFloatTensors(c);
  ASSERT_EQ(floats.size(), 4u);
  EXPECT_EQ(floats[2].name, kPreFeedforwardNorm);
  EXPECT_THAT(Labels(c), ::testing::ElementsAre(
                             "input_layernorm->self_attn.q_proj+self_attn.k_proj+self_attn.v_proj",
                             "pre_feedforward_layernorm->mlp.gate_proj+mlp.up_proj",
                             "mlp.up_proj->mlp.down_proj"));
}

TEST(ArchitectureRegistryTest, Gemma3TextRealConfigAlternatesLocalAndGlobalLayers) {
  const ModelConfig c = ParseOrDie("gemma-3-1b");
  ASSERT_NE(c.arch, nullptr);
  EXPECT_STREQ(c.arch->name, "gemma3_text");
  EXPECT_TRUE(c.qk_norm);
  EXPECT_EQ(c.norm, NormKind::kRmsOnePlusWeight);
  EXPECT_DOUBLE_EQ(c.attn_logit_softcapping, 0.0);
  EXPECT_DOUBLE_EQ(c.final_logit_softcapping, 0.0);
  EXPECT_EQ(c.dtype, DType::kBF16);
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const bool global = (l + 1) % 6 == 0;
    EXPECT_EQ(c.attention(l).sliding_window, global ? 0 : 512) << l;
    EXPECT_DOUBLE_EQ(c.attention(l).rope_theta, global ? 1e6 : 1e4) << l;
  }
  // transformers 5 spells the same per layer type.
  absl::StatusOr<nlohmann::json> j = ReadJsonFile(DataConfig("gemma-3-1b"));
  ASSERT_TRUE(j.ok());
  nlohmann::json v5 = *j;
  v5.erase("sliding_window_pattern");
  v5.erase("rope_local_base_freq");
  v5.erase("rope_theta");
  v5["layer_types"] = nlohmann::json::array();
  for (int l = 0; l < 26; ++l) {
    v5["layer_types"].push_back((l + 1) % 6 == 0 ? "full_attention" : "sliding_attention");
  }
  v5["rope_parameters"] = {
      {"full_attention", {{"rope_type", "linear"}, {"factor", 8.0}, {"rope_theta", 1e6}}},
      {"sliding_attention", {{"rope_type", "default"}, {"rope_theta", 1e4}}}};
  absl::StatusOr<ModelConfig> c5 = ParseModelConfig(v5, "v5");
  ASSERT_TRUE(c5.ok()) << c5.status();
  EXPECT_EQ(c5->attention(5).rope_scaling.type, RopeScaling::Type::kLinear);
  EXPECT_DOUBLE_EQ(c5->attention(5).rope_theta, 1e6);
  EXPECT_EQ(c5->attention(4).rope_scaling.type, RopeScaling::Type::kDefault);
  EXPECT_DOUBLE_EQ(c5->attention(4).rope_theta, 1e4);
  EXPECT_EQ(c5->attention(4).sliding_window, 512);
}

TEST(ArchitectureRegistryTest, Phi3RealConfigSplitsFusedLinears) {
  const ModelConfig c = ParseOrDie("phi-3-mini-4k-instruct");  // its auto_map is Phi-3's own code
  ASSERT_NE(c.arch, nullptr);
  EXPECT_STREQ(c.arch->name, "phi3");
  EXPECT_EQ(c.head_dim, 96);
  EXPECT_EQ(c.attention(0).sliding_window, 2047);
  std::vector<std::string> names, sources;
  for (const LinearSpec& l : LayerLinears(c)) {
    names.push_back(l.name);
    sources.push_back(l.source);
    EXPECT_TRUE(l.clip) << l.name << ": AutoAWQ clips the fused qkv_proj whole";
  }
  EXPECT_THAT(
      names, ::testing::ElementsAre(kOProj, kQProj, kKProj, kVProj, kGateProj, kUpProj, kDownProj));
  EXPECT_THAT(sources,
              ::testing::ElementsAre("self_attn.o_proj", "self_attn.qkv_proj", "self_attn.qkv_proj",
                                     "self_attn.qkv_proj", "mlp.gate_up_proj", "mlp.gate_up_proj",
                                     "mlp.down_proj"));
  EXPECT_EQ(SourceLayerTensors(c, 3)[1].name, "model.layers.3.self_attn.qkv_proj.weight");
  EXPECT_EQ(SourceLayerTensors(c, 3)[1].shape, (std::vector<int64_t>{9216, 3072}));
  // MHA: AutoAWQ's qkv_proj -> o_proj group divides v's rows.
  EXPECT_THAT(Labels(c), ::testing::ElementsAre("input_layernorm->self_attn.qkv_proj",
                                                "self_attn.qkv_proj->self_attn.o_proj",
                                                "post_attention_layernorm->mlp.gate_up_proj",
                                                "mlp.gate_up_proj->mlp.down_proj"));
  // Grouped-query Phi-3 (medium, Phi-4): that group would divide k and q rows too; quantd skips it.
  absl::StatusOr<nlohmann::json> j = ReadJsonFile(DataConfig("phi-3-mini-4k-instruct"));
  ASSERT_TRUE(j.ok());
  (*j)["num_key_value_heads"] = 8;
  absl::StatusOr<ModelConfig> gqa = ParseModelConfig(*j, "gqa");
  ASSERT_TRUE(gqa.ok()) << gqa.status();
  EXPECT_EQ(Labels(*gqa).size(), 3u);
}

TEST(ArchitectureRegistryTest, ModelTypeStandsInForMissingArchitectures) {
  for (const ArchitectureSpec* a : SupportedArchitectures()) {
    nlohmann::json j = testing::TinyConfig(a->hf_class, false);
    j.erase("architectures");
    j["model_type"] = a->model_types.front();
    absl::StatusOr<ModelConfig> c = ParseModelConfig(j, "x");
    ASSERT_TRUE(c.ok()) << a->name << ": " << c.status();
    EXPECT_EQ(c->arch, a);
    EXPECT_EQ(c->architecture_name, a->hf_class);
    EXPECT_EQ(FindArchitectureByModelType(a->model_types.front()), a);
    EXPECT_EQ(FindArchitectureByName(a->name), a);
  }
  nlohmann::json j = testing::TinyConfig("LlamaForCausalLM", false);
  j.erase("architectures");
  absl::Status s = ParseModelConfig(j, "/m/config.json").status();
  EXPECT_THAT(std::string(s.message()), HasSubstr("no model_type"));
  j["model_type"] = "gpt2";
  s = ParseModelConfig(j, "/m/config.json").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("\"gpt2\""));
  EXPECT_THAT(std::string(s.message()), HasSubstr(SupportedArchitectureList()));
}

TEST(ArchitectureRegistryTest, MultimodalCheckpointsAreRefusedClearly) {
  const nlohmann::json gemma3 = {{"architectures", {"Gemma3ForConditionalGeneration"}},
                                 {"model_type", "gemma3"},
                                 {"text_config", {{"model_type", "gemma3_text"}}},
                                 {"vision_config", {{"model_type", "siglip_vision_model"}}}};
  absl::Status s = CheckModelConfigSupported(gemma3, "/m/config.json");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("multimodal"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("Gemma3ForCausalLM"));
  const nlohmann::json qwen_vl = {{"architectures", {"Qwen2_5_VLForConditionalGeneration"}},
                                  {"text_config", {{"model_type", "qwen2_5_vl_text"}}}};
  s = CheckModelConfigSupported(qwen_vl, "/m/config.json");
  EXPECT_THAT(std::string(s.message()), HasSubstr("multimodal"));
  EXPECT_THAT(SupportedModelClasses(), ::testing::Contains("Phi3ForCausalLM"));
}

// Every family's groups name Linears its layer has (prev_op: a Linear or a float tensor of the
// layer), each group reads its first Linear's input (a MoE block's group: the router's), and a
// Linear is scaled by one group at most.
TEST(ArchitectureRegistryTest, ScalingGroupsNameTheLayersTensors) {
  for (const ArchitectureSpec* a : SupportedArchitectures()) {
    for (int kv : {2, 4}) {  // GQA, and MHA (hidden 64 = 4 heads of 16 where head_dim is derived)
      nlohmann::json j = testing::TinyConfig(a->hf_class, false);
      j["num_key_value_heads"] = kv;
      absl::StatusOr<ModelConfig> c = ParseModelConfig(j, "x");
      ASSERT_TRUE(c.ok()) << a->name << ": " << c.status();
      std::set<std::string> linears, floats, scaled;
      for (const LinearSpec& l : LayerLinears(*c)) linears.insert(l.name);
      for (const LayerTensorSpec& t : LayerFloatTensors(*c)) floats.insert(t.name);
      for (const ScalingGroup& g : a->scaling_groups(*c)) {
        SCOPED_TRACE(absl::StrCat(a->name, " kv ", kv, " ", g.label));
        EXPECT_TRUE(linears.count(g.prev_op) + floats.count(g.prev_op) == 1);
        if (g.inspect == InspectedModule::kMoe) {
          // A MoE block's experts read only their routed tokens: the group reads the block's
          // input, which the router (its first float consumer) sees for every token.
          ASSERT_FALSE(g.float_consumers.empty());
          EXPECT_EQ(g.input, g.float_consumers.front());
          EXPECT_EQ(floats.count(g.input), 1u);
        } else {
          EXPECT_EQ(g.input, g.linears.front());
        }
        for (const std::string& l : g.linears) {
          EXPECT_EQ(linears.count(l), 1u);
          EXPECT_TRUE(scaled.insert(l).second) << l << " is in two groups";
        }
      }
      // Every Linear the layer loads has a slot in LayerWeights.
      LayerWeights w;
      for (const std::string& l : linears) EXPECT_NE(FindLinear(&w, l), nullptr) << l;
      for (const std::string& t : floats) EXPECT_NE(FindFloatTensor(&w, t), nullptr) << t;
    }
  }
  // Every family has a miniature and a real geometry in the family tests (testing/family_models.h).
  std::vector<std::string> names;
  for (const ArchitectureSpec* a : SupportedArchitectures()) names.push_back(a->name);
  EXPECT_EQ(names, testing::FamilyNames());
  EXPECT_FALSE(AutoAwqClips("self_attn.q_proj"));
  EXPECT_FALSE(AutoAwqClips("self_attn.k_proj"));
  EXPECT_TRUE(AutoAwqClips("self_attn.qkv_proj"));
  EXPECT_TRUE(AutoAwqClips("mlp.down_proj"));
}

// The gpu tests' real geometries (checked here, where they cost nothing): every family parses,
// keeps its published geometry, and has windows shorter than the gpu tests' 128-token blocks.
TEST(ArchitectureRegistryTest, RealGeometriesOfTheGpuTestsParse) {
  for (const std::string& family : testing::FamilyNames()) {
    absl::StatusOr<ModelConfig> c =
        ParseModelConfig(testing::RealGeometryConfig(family, 2, 2048, 64), family);
    ASSERT_TRUE(c.ok()) << family << ": " << c.status();
    EXPECT_STREQ(c->arch->name, family.c_str());
    EXPECT_EQ(c->num_hidden_layers, 2);
    EXPECT_GE(c->hidden_size, 896) << family;
    EXPECT_LE(c->max_sliding_window(), 64) << family;
    for (const LinearSpec& l : LayerLinears(*c)) {
      EXPECT_EQ(l.in % 128, 0) << family << " " << l.name;
      EXPECT_EQ(l.out % 8, 0) << family << " " << l.name;
    }
  }
  const ModelConfig g3 =
      *ParseModelConfig(testing::RealGeometryConfig("gemma3_text", 2, 2048, 64), "gemma3");
  EXPECT_EQ(g3.attention(0).sliding_window, 64);
  EXPECT_EQ(g3.attention(1).sliding_window, 0);
}

// One row per family of docs/architectures.md's table, from the registry: class, model_type,
// AutoAWQ's class and the scaling groups (those only plain-MHA geometries have marked).
std::string ExpectedTableRow(const ArchitectureSpec& a) {
  nlohmann::json gqa = testing::TinyConfig(a.hf_class, false);
  nlohmann::json mha = gqa;
  mha["num_key_value_heads"] = mha["num_attention_heads"];
  mha.erase("head_dim");  // hidden_size / heads: v_proj and o_proj are square
  const ModelConfig g = *ParseModelConfig(gqa, "gqa");
  const ModelConfig m = *ParseModelConfig(mha, "mha");
  const std::vector<std::string> with_gqa = Labels(g);
  std::vector<std::string> groups;
  for (const std::string& label : Labels(m)) {
    const bool mha_only = std::find(with_gqa.begin(), with_gqa.end(), label) == with_gqa.end();
    groups.push_back(absl::StrCat("`", label, "`", mha_only ? " (MHA only)" : ""));
  }
  return absl::StrCat("| ", a.name, " | `", a.hf_class, "` | `",
                      absl::StrJoin(a.model_types, "`, `"), "` | ",
                      a.autoawq_class[0] == '\0' ? "none" : absl::StrCat("`", a.autoawq_class, "`"),
                      " | ", absl::StrJoin(groups, "<br>"), " |");
}

TEST(ArchitectureRegistryTest, DocsTableMatchesTheRegistry) {
  const std::string path = std::string(QUANTD_SOURCE_DIR) + "/docs/architectures.md";
  std::ifstream in(path);
  ASSERT_TRUE(in) << path;
  std::stringstream text;
  text << in.rdbuf();
  const std::string doc = text.str();
  const std::string begin = "<!-- registry table: begin -->";
  const std::string end = "<!-- registry table: end -->";
  const size_t b = doc.find(begin), e = doc.find(end);
  ASSERT_TRUE(b != std::string::npos && e != std::string::npos && b < e)
      << path << " needs the table between " << begin << " and " << end;
  std::vector<std::string> rows;
  std::istringstream lines(doc.substr(b + begin.size(), e - b - begin.size()));
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("| ", 0) == 0 && line.rfind("| family", 0) != 0 && line.rfind("|---", 0) != 0) {
      rows.push_back(line);
    }
  }
  std::string expected;
  for (const ArchitectureSpec* a : SupportedArchitectures()) {
    absl::StrAppend(&expected, ExpectedTableRow(*a), "\n");
  }
  std::string found;
  for (const std::string& r : rows) absl::StrAppend(&found, r, "\n");
  EXPECT_EQ(found, expected) << "docs/architectures.md's registry table is out of date; its rows "
                                "must read:\n"
                             << expected;
}

}  // namespace
}  // namespace quantd::engine
