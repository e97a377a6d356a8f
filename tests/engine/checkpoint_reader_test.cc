// Reading model checkpoints: single and sharded safetensors, every architecture, layer-by-layer
// loading, and clear errors for broken indexes, missing shards, wrong shapes and unsupported
// geometries.
#include "io/checkpoint_reader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <utility>
#include <vector>

#include "io/json_file.h"
#include "io/source_values.h"
#include "model/architecture.h"
#include "model/registry.h"
#include "testing/io_random_model.h"
#include "testing/io_temp_dir.h"
#include "tests/testing/test_data.h"

namespace quantd::engine {
namespace {

using ::testing::HasSubstr;
using testing::IoTempDir;
using testing::RandomModelOptions;
using testing::ReadTextFile;
using testing::TinyConfig;
using testing::WriteRandomModel;
using testing::WriteTextFile;

std::string MakeModel(const IoTempDir& dir, const std::string& arch, bool tied,
                      int64_t shard_bytes = 5'000'000'000, DType dtype = DType::kF16) {
  RandomModelOptions o;
  o.config = TinyConfig(arch, tied);
  o.output_dir = dir.Sub("model");
  o.dtype = dtype;
  o.seed = 7;
  o.max_shard_bytes = shard_bytes;
  absl::Status s = WriteRandomModel(o);
  EXPECT_TRUE(s.ok()) << s;
  return o.output_dir;
}

std::string OpenError(const std::string& dir) {
  auto model = OpenSourceModel(dir, 32, {"lm_head"});
  EXPECT_FALSE(model.ok());
  return std::string(model.status().message());
}

TEST(CheckpointReaderTest, TinyQwen2ShardedFp16) {
  auto model =
      OpenSourceModel(quantd::test_data::Path("models/tiny-qwen2-wp/model"), 128, {"lm_head"});
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(model->weights->files().size(), 2u);
  auto layer = model->weights->LoadLayer(model->config, 3);
  ASSERT_TRUE(layer.ok()) << layer.status();
  EXPECT_EQ(layer->q_proj.weight.shape, (std::vector<int64_t>{384, 384}));
  EXPECT_EQ(layer->k_proj.weight.shape, (std::vector<int64_t>{128, 384}));
  ASSERT_TRUE(layer->v_proj.bias.has_value());
  EXPECT_FALSE(layer->o_proj.bias.has_value());
  EXPECT_EQ(layer->down_proj.weight.shape, (std::vector<int64_t>{384, 1024}));
  EXPECT_FALSE(layer->q_norm.has_value());
  auto embed = model->weights->LoadEmbedding();
  auto head = model->weights->LoadLmHead(model->config);
  ASSERT_TRUE(embed.ok() && head.ok());
  EXPECT_EQ(embed->data, head->data);  // Tied.
  EXPECT_EQ(model->weights->LoadFinalNorm()->shape, (std::vector<int64_t>{384}));
}

TEST(CheckpointReaderTest, Stories260KGroupSizeErrorNamesTheModule) {
  const std::string dir = quantd::test_data::Path("models/stories260K/hf");
  auto model = OpenSourceModel(dir, 128, {"lm_head"});
  EXPECT_EQ(model.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(model.status().message()),
              HasSubstr("model.layers.0.self_attn.q_proj: in_features 64 is not divisible by "
                        "group_size 128"));
  model = OpenSourceModel(dir, 32, {"lm_head"});
  EXPECT_THAT(std::string(model.status().message()),
              HasSubstr("model.layers.0.mlp.gate_proj: out_features 172 is not a multiple of 8"));
  model = OpenSourceModel(dir, 64, {"lm_head", "gate_proj", "up_proj"});
  EXPECT_THAT(std::string(model.status().message()),
              HasSubstr("model.layers.0.mlp.down_proj: in_features 172 is not divisible by "
                        "group_size 64"));
  // The checkpoint itself (F32, tied) reads fine.
  auto config = LoadModelConfig(dir);
  ASSERT_TRUE(config.ok());
  auto reader = CheckpointReader::Open(dir);
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_TRUE((*reader)->CheckAgainstConfig(*config).ok());
  auto layer = (*reader)->LoadLayer(*config, 4);
  ASSERT_TRUE(layer.ok());
  EXPECT_EQ(layer->down_proj.weight.shape, (std::vector<int64_t>{64, 172}));
}

TEST(CheckpointReaderTest, EveryArchitectureRoundTripsThroughTheRandomGenerator) {
  for (const ArchitectureSpec* arch : SupportedArchitectures()) {
    for (bool tied : {false, true}) {
      IoTempDir dir;
      std::string model_dir = MakeModel(dir, arch->hf_class, tied, 5'000'000'000, DType::kBF16);
      auto model = OpenSourceModel(model_dir, 32, {"lm_head"});
      ASSERT_TRUE(model.ok()) << arch->hf_class << ": " << model.status();
      EXPECT_EQ(model->config.arch, arch);
      EXPECT_EQ(model->config.dtype, DType::kBF16);
      auto layer = model->weights->LoadLayer(model->config, 1);
      ASSERT_TRUE(layer.ok()) << layer.status();
      EXPECT_EQ(layer->index, 1);
      EXPECT_EQ(layer->q_proj.bias.has_value(), model->config.attention_bias);
      EXPECT_EQ(layer->q_norm.has_value(), model->config.qk_norm);
      EXPECT_EQ(layer->pre_feedforward_layernorm.has_value(), model->config.sandwich_norms);
      // Every canonical Linear is loaded (fused ones split) with the shape LayerLinears names.
      for (const LinearSpec& spec : LayerLinears(model->config)) {
        const LinearWeights* l = FindLinear(*layer, spec.name);
        ASSERT_NE(l, nullptr) << spec.name;
        EXPECT_EQ(l->weight.shape, (std::vector<int64_t>{spec.out, spec.in})) << spec.name;
      }
      EXPECT_EQ(model->weights->Find(kLmHeadName) != nullptr, !tied);
      auto head = model->weights->LoadLmHead(model->config);
      ASSERT_TRUE(head.ok());
      EXPECT_EQ(head->shape, (std::vector<int64_t>{96, 64}));
    }
  }
}

// LoadLayerSources leaves every Linear in the checkpoint, pointing at its values: read, a fused
// source tensor's parts (Phi-3's qkv_proj, transformers 5's 3-D experts) together are exactly
// that tensor as ReadFloat reads it whole, in order.
TEST(CheckpointReaderTest, LayerSourcesReadBackAsTheirWholeTensors) {
  for (const ArchitectureSpec* arch : SupportedArchitectures()) {
    for (bool fused_experts : {false, true}) {
      RandomModelOptions o;
      o.config = TinyConfig(arch->hf_class, /*tied=*/true);
      IoTempDir dir;
      o.output_dir = dir.Sub("model");
      o.dtype = DType::kBF16;
      o.seed = 3;
      o.fused_experts = fused_experts;
      ASSERT_TRUE(WriteRandomModel(o).ok());
      auto model = OpenSourceModel(o.output_dir, 32, {"lm_head"});
      ASSERT_TRUE(model.ok()) << arch->hf_class << ": " << model.status();
      auto layer = model->weights->LoadLayerSources(model->config, 1);
      ASSERT_TRUE(layer.ok()) << arch->hf_class << ": " << layer.status();
      // Each source tensor's values, gathered from the Linears that point into it.
      std::map<std::string, std::vector<std::pair<int64_t, std::vector<float>>>> parts;
      for (const LinearSpec& spec : LayerLinears(model->config)) {
        const LinearWeights* l = FindLinear(*layer, spec.name);
        ASSERT_NE(l, nullptr) << spec.name;
        ASSERT_TRUE(l->source.has_value()) << arch->hf_class << " " << spec.name;
        EXPECT_TRUE(l->weight.data.empty());
        EXPECT_EQ(l->weight.shape, (std::vector<int64_t>{spec.out, spec.in})) << spec.name;
        ASSERT_EQ(l->source->count, spec.out * spec.in);
        std::vector<float> values(static_cast<size_t>(l->source->count));
        ASSERT_TRUE(ReadSourceValues(*l->source, 0, l->source->count, values.data(), 2).ok());
        parts[l->source->tensor].emplace_back(l->source->first, std::move(values));
      }
      for (auto& [tensor, pieces] : parts) {
        std::sort(pieces.begin(), pieces.end(),
                  [](const auto& a, const auto& b) { return a.first < b.first; });
        std::vector<float> joined;
        for (const auto& [first, values] : pieces) {
          EXPECT_EQ(first, static_cast<int64_t>(joined.size())) << tensor;
          joined.insert(joined.end(), values.begin(), values.end());
        }
        auto whole = model->weights->ReadFloat(tensor);
        ASSERT_TRUE(whole.ok()) << whole.status();
        EXPECT_TRUE(joined == whole->data) << arch->hf_class << " " << tensor;
      }
      // Read, the layer is what LoadLayer gives.
      ASSERT_TRUE(MaterializeLayer(&*layer).ok());
      auto read = model->weights->LoadLayer(model->config, 1);
      ASSERT_TRUE(read.ok());
      for (const LinearSpec& spec : LayerLinears(model->config)) {
        EXPECT_FALSE(FindLinear(*layer, spec.name)->source.has_value());
        EXPECT_EQ(FindLinear(*layer, spec.name)->weight.data,
                  FindLinear(*read, spec.name)->weight.data)
            << spec.name;
      }
      if (!model->config.moe.enabled()) break;  // one expert layout only
    }
  }
}

TEST(CheckpointReaderTest, RandomModelPlantsTheSameOutlierChannelsInEveryNorm) {
  IoTempDir dir;
  RandomModelOptions o;
  o.config = TinyConfig("LlamaForCausalLM", true);
  o.output_dir = dir.Sub("m");
  o.outlier_channels = 3;
  ASSERT_TRUE(WriteRandomModel(o).ok());
  auto model = OpenSourceModel(o.output_dir, 32, {});
  ASSERT_TRUE(model.ok()) << model.status();
  std::vector<int> first;
  for (int layer = 0; layer < 2; ++layer) {
    auto w = model->weights->LoadLayer(model->config, layer);
    ASSERT_TRUE(w.ok());
    for (const Tensor* norm : {&w->input_layernorm, &w->post_attention_layernorm}) {
      std::vector<int> big;
      for (int c = 0; c < 64; ++c) {
        float v = norm->data[c];
        EXPECT_TRUE((v >= 0.79f && v <= 1.21f) || (v >= 15.9f && v <= 24.1f)) << v;
        if (v > 10) big.push_back(c);
      }
      EXPECT_EQ(big.size(), 3u);
      if (first.empty()) first = big;
      EXPECT_EQ(big, first);
    }
  }
}

TEST(CheckpointReaderTest, ShardedRandomModelWithIndex) {
  IoTempDir dir;
  std::string model_dir = MakeModel(dir, "Qwen2ForCausalLM", false, 20000);
  EXPECT_TRUE(std::filesystem::exists(model_dir + "/model.safetensors.index.json"));
  auto model = OpenSourceModel(model_dir, 32, {"lm_head"});
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_GT(model->weights->files().size(), 2u);
}

TEST(CheckpointReaderTest, BrokenIndexesAreClearErrors) {
  IoTempDir dir;
  std::string model_dir = MakeModel(dir, "LlamaForCausalLM", true, 20000);
  const std::string index_path = model_dir + "/model.safetensors.index.json";
  const std::string good = ReadTextFile(index_path);
  nlohmann::json index = nlohmann::json::parse(good);

  WriteTextFile(index_path, "{ not json");
  EXPECT_THAT(OpenError(model_dir), HasSubstr("model.safetensors.index.json: invalid JSON"));

  WriteTextFile(index_path, R"({"metadata":{}})");
  EXPECT_THAT(OpenError(model_dir), HasSubstr("field 'weight_map'"));

  nlohmann::json j = index;
  j["weight_map"]["model.norm.weight"] = "model-00009-of-00009.safetensors";
  WriteTextFile(index_path, j.dump());
  EXPECT_THAT(OpenError(model_dir),
              HasSubstr("names shard model-00009-of-00009.safetensors (for tensor "
                        "\"model.norm.weight\"), which does not exist"));

  j = index;
  j["weight_map"]["model.norm.weight"] = j["weight_map"]["model.embed_tokens.weight"];
  ASSERT_NE(j["weight_map"]["model.norm.weight"], index["weight_map"]["model.norm.weight"]);
  WriteTextFile(index_path, j.dump());
  EXPECT_THAT(OpenError(model_dir), HasSubstr("places tensor \"model.norm.weight\" in"));
  j = index;
  j["weight_map"]["x"] = "../etc/passwd";
  WriteTextFile(index_path, j.dump());
  EXPECT_THAT(OpenError(model_dir), HasSubstr("is not a file name in the model directory"));

  j = index;
  j["weight_map"].erase("model.layers.1.mlp.up_proj.weight");
  WriteTextFile(index_path, j.dump());
  EXPECT_THAT(OpenError(model_dir),
              HasSubstr("tensor \"model.layers.1.mlp.up_proj.weight\" (expected shape [128, 64]) "
                        "is missing"));
  WriteTextFile(index_path, good);
  EXPECT_TRUE(OpenSourceModel(model_dir, 32, {}).ok());
}

TEST(CheckpointReaderTest, ConfigAndWeightsDisagree) {
  IoTempDir dir;
  std::string model_dir = MakeModel(dir, "MistralForCausalLM", false);
  const std::string config_path = model_dir + "/config.json";
  nlohmann::json config = nlohmann::json::parse(ReadTextFile(config_path));

  nlohmann::json c = config;
  c["intermediate_size"] = 256;
  WriteTextFile(config_path, c.dump());
  std::string error = OpenError(model_dir);
  EXPECT_THAT(error, HasSubstr("model.safetensors: tensor \"model.layers.0.mlp.gate_proj.weight\" "
                               "has shape [128, 64], expected [256, 64] from config.json"));

  c = config;
  c["num_hidden_layers"] = 1;
  WriteTextFile(config_path, c.dump());
  EXPECT_THAT(OpenError(model_dir), HasSubstr("beyond num_hidden_layers (1)"));

  c = config;
  c["num_hidden_layers"] = 3;
  WriteTextFile(config_path, c.dump());
  EXPECT_THAT(OpenError(model_dir), HasSubstr("\"model.layers.2.self_attn.q_proj.weight\""));

  c = config;
  c["architectures"] = {"Qwen2ForCausalLM"};  // Expects q/k/v biases the file lacks.
  WriteTextFile(config_path, c.dump());
  EXPECT_THAT(OpenError(model_dir), HasSubstr("\"model.layers.0.self_attn.q_proj.bias\""));
}

TEST(CheckpointReaderTest, MissingWeightsAndDirectories) {
  IoTempDir dir;
  EXPECT_THAT(OpenError(dir.Sub("nope")), HasSubstr("does not exist"));
  WriteTextFile(dir.Sub("file"), "x");
  EXPECT_THAT(OpenError(dir.Sub("file")), HasSubstr("is not a directory"));
  std::filesystem::create_directory(dir.Sub("empty"));
  EXPECT_THAT(OpenError(dir.Sub("empty")), HasSubstr("has no config.json"));
  std::string model_dir = MakeModel(dir, "LlamaForCausalLM", true);
  std::filesystem::rename(model_dir + "/model.safetensors", model_dir + "/pytorch_model.bin");
  EXPECT_THAT(OpenError(model_dir), HasSubstr("only safetensors checkpoints are supported"));
  WriteTextFile(model_dir + "/model.safetensors", "garbage!garbage");
  EXPECT_THAT(OpenError(model_dir), HasSubstr("invalid safetensors header"));
}

}  // namespace
}  // namespace quantd::engine
