// config.json parsing: both transformers styles, the four architectures, RoPE types, and clear
// errors naming the file and field for everything we do not support.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "model/architecture.h"
#include "model/model_config.h"
#include "model/registry.h"
#include "tests/testing/test_data.h"

namespace quantd::engine {
namespace {

using ::testing::HasSubstr;

nlohmann::json MinimalConfig(const char* arch = "LlamaForCausalLM") {
  return {{"architectures", {arch}}, {"hidden_size", 64},         {"intermediate_size", 128},
          {"num_hidden_layers", 2},  {"num_attention_heads", 4},  {"num_key_value_heads", 2},
          {"vocab_size", 100},       {"torch_dtype", "bfloat16"}, {"max_position_embeddings", 256}};
}

absl::Status ParseError(const nlohmann::json& j) {
  return ParseModelConfig(j, "/m/config.json").status();
}

TEST(ConfigParseTest, Transformers5StyleTinyQwen2) {
  auto c = LoadModelConfig(quantd::test_data::Path("models/tiny-qwen2-wp/model"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_STREQ(c->arch->name, "qwen2");
  EXPECT_EQ(c->hidden_size, 384);
  EXPECT_EQ(c->num_key_value_heads, 2);
  EXPECT_EQ(c->head_dim, 64);
  EXPECT_EQ(c->dtype, DType::kF16);
  EXPECT_TRUE(c->tie_word_embeddings);
  EXPECT_TRUE(c->attention_bias);
  EXPECT_EQ(c->rope_scaling.type, RopeScaling::Type::kDefault);
  EXPECT_DOUBLE_EQ(c->rope_theta, 10000.0);
  EXPECT_EQ(c->raw["transformers_version"], "5.17.0");
}

TEST(ConfigParseTest, Transformers4StyleRealConfigs) {
  auto llama = ParseModelConfig(
      nlohmann::json::parse(R"({"architectures":["LlamaForCausalLM"],"hidden_size":4096,
        "intermediate_size":14336,"num_hidden_layers":32,"num_attention_heads":32,
        "num_key_value_heads":8,"vocab_size":128256,"rope_theta":500000.0,"torch_dtype":"bfloat16",
        "rope_scaling":{"factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,
        "original_max_position_embeddings":8192,"rope_type":"llama3"}})"),
      "x");
  ASSERT_TRUE(llama.ok()) << llama.status();
  for (const char* name : {"llama-3.1-8b", "mistral-7b-v0.1", "qwen2.5-0.5b-instruct",
                           "qwen2.5-7b-instruct", "qwen3-0.6b"}) {
    std::string path = quantd::test_data::Path(std::string("configs/") + name + ".config.json");
    // Load through ParseModelConfig since the files are not named config.json.
    FILE* f = std::fopen(path.c_str(), "r");
    ASSERT_NE(f, nullptr) << path;
    std::string text;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) text.append(buf, n);
    std::fclose(f);
    auto parsed = ParseModelConfig(nlohmann::json::parse(text), path);
    EXPECT_TRUE(parsed.ok()) << name << ": " << parsed.status();
  }
  EXPECT_EQ(llama->rope_scaling.type, RopeScaling::Type::kLlama3);
  EXPECT_DOUBLE_EQ(llama->rope_scaling.factor, 8.0);
  EXPECT_EQ(llama->rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_DOUBLE_EQ(llama->rope_theta, 500000.0);
  EXPECT_EQ(llama->dtype, DType::kBF16);
  EXPECT_FALSE(llama->tie_word_embeddings);
  EXPECT_EQ(llama->head_dim, 128);
}

TEST(ConfigParseTest, Qwen3HasQkNormAndExplicitHeadDim) {
  nlohmann::json j = MinimalConfig("Qwen3ForCausalLM");
  j["head_dim"] = 32;  // != hidden / heads = 16, as in Qwen3-0.6B.
  auto c = ParseModelConfig(j, "x");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->qk_norm);
  EXPECT_FALSE(c->attention_bias);
  EXPECT_EQ(c->head_dim, 32);
  std::vector<TensorSpec> layer = SourceLayerTensors(*c, 1);
  EXPECT_EQ(layer[0].name, "model.layers.1.self_attn.q_proj.weight");
  EXPECT_EQ(layer[0].shape, (std::vector<int64_t>{128, 64}));
  EXPECT_EQ(layer[4].name, "model.layers.1.self_attn.q_norm.weight");
  EXPECT_EQ(layer[4].shape, (std::vector<int64_t>{32}));
}

TEST(ConfigParseTest, MistralSlidingWindowAppliesToEveryLayer) {
  nlohmann::json j = MinimalConfig("MistralForCausalLM");
  j["sliding_window"] = 4096;
  auto c = ParseModelConfig(j, "x");
  ASSERT_TRUE(c.ok()) << c.status();
  for (int layer = 0; layer < 2; ++layer) EXPECT_EQ(c->attention(layer).sliding_window, 4096);
  EXPECT_EQ(c->max_sliding_window(), 4096);
  j["sliding_window"] = nullptr;  // Mistral v0.2+: full attention.
  EXPECT_EQ(ParseModelConfig(j, "x")->max_sliding_window(), 0);
  j = MinimalConfig("Qwen2ForCausalLM");
  j["sliding_window"] = 4096;  // Inactive without use_sliding_window.
  EXPECT_EQ(ParseModelConfig(j, "x")->max_sliding_window(), 0);
  j["use_sliding_window"] = true;  // From max_window_layers on.
  j["max_window_layers"] = 1;
  c = ParseModelConfig(j, "x");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->attention(0).sliding_window, 0);
  EXPECT_EQ(c->attention(1).sliding_window, 4096);
}

TEST(ConfigParseTest, MistralAndLinearRope) {
  nlohmann::json j = MinimalConfig("MistralForCausalLM");
  j["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
  auto c = ParseModelConfig(j, "x");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_STREQ(c->arch->name, "mistral");
  EXPECT_EQ(c->rope_scaling.type, RopeScaling::Type::kLinear);
  EXPECT_DOUBLE_EQ(c->rope_scaling.factor, 2.0);
}

TEST(ConfigParseTest, MissingDtypeMeansFloat32AndMissingKvHeadsMeansMha) {
  nlohmann::json j = MinimalConfig();
  j.erase("torch_dtype");
  j.erase("num_key_value_heads");
  auto c = ParseModelConfig(j, "x");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->dtype, DType::kF32);
  EXPECT_EQ(c->num_key_value_heads, 4);
}

TEST(ConfigParseTest, UnsupportedArchitectureListsSupported) {
  absl::Status s = ParseError(MinimalConfig("GPT2LMHeadModel"));
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("/m/config.json"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("GPT2LMHeadModel"));
  for (const ArchitectureSpec* a : SupportedArchitectures()) {
    EXPECT_THAT(std::string(s.message()), HasSubstr(a->hf_class));
  }
  nlohmann::json j = MinimalConfig();
  j.erase("architectures");
  EXPECT_THAT(std::string(ParseError(j).message()), HasSubstr("'architectures'"));
}

TEST(ConfigParseTest, UnsupportedRopeTypesNameTheField) {
  for (const char* type : {"yarn", "dynamic", "longrope"}) {
    nlohmann::json j = MinimalConfig();
    j["rope_scaling"] = {{"rope_type", type}, {"factor", 2.0}};
    absl::Status s = ParseError(j);
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << type;
    EXPECT_THAT(std::string(s.message()), HasSubstr("rope_scaling.rope_type"));
    EXPECT_THAT(std::string(s.message()), HasSubstr(type));
  }
  nlohmann::json j = MinimalConfig();
  j["rope_parameters"] = {{"rope_type", "yarn"}, {"rope_theta", 1e6}};
  EXPECT_THAT(std::string(ParseError(j).message()), HasSubstr("rope_parameters.rope_type"));
  j["rope_parameters"] = {{"rope_type", "llama3"}, {"factor", 8.0}};
  EXPECT_THAT(std::string(ParseError(j).message()), HasSubstr("low_freq_factor"));
}

TEST(ConfigParseTest, GeometryErrorsNameTheField) {
  struct Case {
    const char* field;
    nlohmann::json value;
    const char* expect;
  } cases[] = {
      {"num_key_value_heads", 3, "must divide num_attention_heads"},
      {"num_attention_heads", 6, "must divide hidden_size"},
      {"hidden_size", 0, "positive integer"},
      {"intermediate_size", "big", "expected an integer"},
      {"vocab_size", nullptr, "missing"},
      {"rms_norm_eps", -1.0, "positive"},
      {"torch_dtype", "int8", "unsupported dtype"},
      {"hidden_act", "gelu", "not supported"},
      {"tie_word_embeddings", "yes", "true or false"},
  };
  for (const Case& c : cases) {
    nlohmann::json j = MinimalConfig();
    j[c.field] = c.value;
    absl::Status s = ParseError(j);
    EXPECT_FALSE(s.ok()) << c.field;
    EXPECT_THAT(std::string(s.message()), HasSubstr(std::string("'") + c.field + "'"));
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.expect)) << s;
  }
}

TEST(ConfigParseTest, BiasedLlamaAndRemoteCodeAreUnsupported) {
  nlohmann::json j = MinimalConfig();
  j["attention_bias"] = true;
  EXPECT_EQ(ParseError(j).code(), absl::StatusCode::kFailedPrecondition);
  j = MinimalConfig("Qwen2ForCausalLM");
  j["use_sliding_window"] = true;  // without a window
  EXPECT_THAT(std::string(ParseError(j).message()), HasSubstr("'sliding_window'"));
  j = MinimalConfig();
  j["auto_map"] = {{"AutoModelForCausalLM", "x.Y"}};
  EXPECT_THAT(std::string(ParseError(j).message()), HasSubstr("remote"));
}

TEST(ConfigParseTest, MissingOrBrokenFileIsClear) {
  auto c = LoadModelConfig("/nonexistent-dir");
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("no config.json"));
  EXPECT_EQ(ParseError(nlohmann::json::array()).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace quantd::engine
