// The AWQ exporter: state-dict planning, sharding as huggingface_hub does it, the files beside
// the weights, atomic commit (nothing under a final name before Commit, nothing left after an
// abort), and artifacts with correct SHA-256. Every export is also run through the output-format
// checker.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "export/awq_export.h"
#include "io/safetensors_file.h"
#include "model/architecture.h"
#include "testing/io_output_format_checker.h"
#include "testing/io_random_export.h"
#include "testing/io_random_model.h"
#include "testing/io_temp_dir.h"
#include "tests/testing/test_data.h"

namespace quantd::engine {
namespace {

using testing::CheckOutputFormat;
using ::testing::ElementsAre;
using testing::ExportRandomAwq;
using ::testing::HasSubstr;
using testing::IoTempDir;
using testing::ListFileNames;
using testing::ListFinalNames;
using testing::ReadTextFile;
using testing::WriteTextFile;

std::string MakeSource(const IoTempDir& dir, const std::string& arch, bool tied) {
  testing::RandomModelOptions o;
  o.config = testing::TinyConfig(arch, tied);
  o.output_dir = dir.Sub("src");
  o.seed = 3;
  EXPECT_TRUE(testing::WriteRandomModel(o).ok());
  WriteTextFile(o.output_dir + "/generation_config.json", R"({"do_sample": false})");
  WriteTextFile(o.output_dir + "/tokenizer.json", R"({"model": {"type": "BPE"}})");
  WriteTextFile(o.output_dir + "/chat_template.jinja", "{{ messages }}");
  return o.output_dir;
}

ExportOptions Options(const std::string& src, const std::string& out) {
  ExportOptions o;
  o.model_dir = src;
  o.output_dir = out;
  o.group_size = 32;
  return o;
}

std::string Sha256Sum(const std::string& path) {
  FILE* p = ::popen(("sha256sum '" + path + "'").c_str(), "r");
  char buf[65] = {0};
  size_t n = std::fread(buf, 1, 64, p);
  ::pclose(p);
  return std::string(buf, n);
}

TEST(ExportAwqTest, PlanShardsFollowsHuggingfaceHub) {
  std::vector<PlannedTensor> sd = {{"a", DType::kF16, {3}},
                                   {"b", DType::kF16, {3}},
                                   {"c", DType::kF16, {10}},
                                   {"d", DType::kF16, {3}}};
  // Sizes 6, 6, 20, 6 bytes; limit 10: a; c (too big, its own shard, placed at once); b; d.
  std::vector<ShardPlan> shards = PlanShards(sd, 10);
  ASSERT_EQ(shards.size(), 4u);
  EXPECT_EQ(shards[0].tensors[0].name, "a");
  EXPECT_EQ(shards[1].tensors[0].name, "c");
  EXPECT_EQ(shards[2].tensors[0].name, "b");
  EXPECT_EQ(shards[3].tensors[0].name, "d");
  EXPECT_EQ(shards[3].file_name, "model-00004-of-00004.safetensors");
  std::vector<ShardPlan> one = PlanShards(sd, 100);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].file_name, "model.safetensors");
  EXPECT_EQ(one[0].tensors.size(), 4u);
}

TEST(ExportAwqTest, TiedQwen2SingleFile) {
  IoTempDir dir;
  std::string src = MakeSource(dir, "Qwen2ForCausalLM", true);
  std::string out = dir.Sub("out/nested");  // Created when missing.
  auto artifacts = ExportRandomAwq(Options(src, out));
  ASSERT_TRUE(artifacts.ok()) << artifacts.status();
  EXPECT_THAT(CheckOutputFormat(out, src), ::testing::IsEmpty());
  EXPECT_THAT(ListFileNames(out),
              ElementsAre("chat_template.jinja", "config.json", "generation_config.json",
                          "model.safetensors", "modules_to_not_convert.txt", "quant_config.json",
                          "tokenizer.json"));
  ASSERT_EQ(artifacts->size(), 7u);
  for (const Artifact& a : *artifacts) {
    EXPECT_EQ(a.sha256, Sha256Sum(a.path)) << a.path;
    EXPECT_EQ(a.size_bytes, static_cast<int64_t>(std::filesystem::file_size(a.path)));
  }
  EXPECT_EQ(ReadTextFile(out + "/quant_config.json"),
            "{\n  \"zero_point\": true,\n  \"q_group_size\": 32,\n  \"w_bit\": 4,\n  "
            "\"version\": \"GEMM\"\n}\n");
  EXPECT_EQ(ReadTextFile(out + "/modules_to_not_convert.txt"), "lm_head\n");
  nlohmann::json config = nlohmann::json::parse(ReadTextFile(out + "/config.json"));
  EXPECT_EQ(config["quantization_config"],
            nlohmann::json::parse(R"({"quant_method":"awq","bits":4,"group_size":32,
              "zero_point":true,"version":"gemm","modules_to_not_convert":["lm_head"]})"));
  EXPECT_EQ(config["torch_dtype"], "float16");
  EXPECT_EQ(config["use_cache"], false);
  auto file = SafetensorsFile::Open(out + "/model.safetensors");
  ASSERT_TRUE(file.ok());
  EXPECT_EQ((*file)->metadata().at("lm_head.weight"), "model.embed_tokens.weight");
  EXPECT_EQ((*file)->Find("lm_head.weight"), nullptr);
  const SafetensorsEntry* bias = (*file)->Find("model.layers.1.self_attn.k_proj.bias");
  ASSERT_NE(bias, nullptr);
  EXPECT_EQ(bias->dtype, DType::kF16);
  // Storage order: I32 first, then F16, each by name.
  EXPECT_EQ((*file)->entries().front().dtype, DType::kI32);
  EXPECT_EQ((*file)->entries().back().dtype, DType::kF16);
}

TEST(ExportAwqTest, UntiedLlamaShardedWithIndexInStateDictOrder) {
  IoTempDir dir;
  std::string src = MakeSource(dir, "LlamaForCausalLM", false);
  std::string out = dir.Sub("out");
  ExportOptions o = Options(src, out);
  o.max_shard_bytes = 16000;
  ASSERT_TRUE(ExportRandomAwq(o).ok());
  EXPECT_THAT(CheckOutputFormat(out, src), ::testing::IsEmpty());
  nlohmann::ordered_json index =
      nlohmann::ordered_json::parse(ReadTextFile(out + "/model.safetensors.index.json"));
  std::vector<std::string> names;
  for (const auto& [k, v] : index["weight_map"].items()) names.push_back(k);
  ASSERT_GT(names.size(), 10u);
  EXPECT_EQ(names.front(), "model.embed_tokens.weight");
  EXPECT_EQ(names[1], "model.layers.0.self_attn.q_proj.qweight");
  EXPECT_EQ(names[2], "model.layers.0.self_attn.q_proj.qzeros");
  EXPECT_EQ(names[3], "model.layers.0.self_attn.q_proj.scales");
  EXPECT_EQ(names.back(), "lm_head.weight");
  EXPECT_EQ(index["metadata"].size(), 1u);  // total_size only: untied.
  EXPECT_FALSE(std::filesystem::exists(out + "/model.safetensors"));
}

TEST(ExportAwqTest, Bfloat16OutputAndQwen3Norms) {
  IoTempDir dir;
  std::string src = MakeSource(dir, "Qwen3ForCausalLM", true);
  std::string out = dir.Sub("out");
  ExportOptions o = Options(src, out);
  o.output_dtype = OutputDtype::kBFloat16;
  ASSERT_TRUE(ExportRandomAwq(o).ok());
  testing::OutputFormatExpectations expect;
  expect.float_dtype = "bfloat16";
  expect.group_size = 32;
  EXPECT_THAT(CheckOutputFormat(out, src, expect), ::testing::IsEmpty());
  auto file = SafetensorsFile::Open(out + "/model.safetensors");
  ASSERT_TRUE(file.ok());
  EXPECT_EQ((*file)->Find("model.layers.0.self_attn.q_norm.weight")->dtype, DType::kBF16);
  EXPECT_EQ((*file)->Find("model.layers.0.self_attn.q_proj.scales")->dtype, DType::kF16);
  // The default expectations (float16) flag it.
  EXPECT_FALSE(CheckOutputFormat(out, src).empty());
}

TEST(ExportAwqTest, TinyQwen2RealModelFiles) {
  IoTempDir dir;
  std::string src = quantd::test_data::Path("models/tiny-qwen2-wp/model");
  ExportOptions o = Options(src, dir.Sub("out"));
  o.group_size = 128;
  ASSERT_TRUE(ExportRandomAwq(o).ok());
  EXPECT_THAT(CheckOutputFormat(o.output_dir, src), ::testing::IsEmpty());
  nlohmann::json config = nlohmann::json::parse(ReadTextFile(o.output_dir + "/config.json"));
  EXPECT_EQ(config["dtype"], "float16");
  EXPECT_FALSE(config.contains("torch_dtype"));  // transformers 5.x style kept.
  EXPECT_EQ(config["rope_parameters"]["rope_type"], "default");
}

TEST(ExportAwqTest, AbortAndDestructionLeaveNoFiles) {
  IoTempDir dir;
  std::string src = MakeSource(dir, "LlamaForCausalLM", true);
  auto config = LoadModelConfig(src);
  ASSERT_TRUE(config.ok());
  std::string out = dir.Sub("out");
  {
    auto exporter = AwqExporter::Create(*config, Options(src, out));
    ASSERT_TRUE(exporter.ok());
    ASSERT_TRUE((*exporter)->WriteFloat(kFinalNormName, Tensor({64}, 1.0f)).ok());
    EXPECT_FALSE(ListFileNames(out).empty());  // The temporary exists...
    EXPECT_TRUE(ListFinalNames(out).empty());  // ...but no final name.
  }
  EXPECT_TRUE(ListFileNames(out).empty());

  auto exporter = AwqExporter::Create(*config, Options(src, out));
  ASSERT_TRUE(exporter.ok());
  ASSERT_TRUE((*exporter)->WriteFloat(kFinalNormName, Tensor({64}, 1.0f)).ok());
  EXPECT_FALSE((*exporter)->WriteFloat(kFinalNormName, Tensor({64}, 1.0f)).ok());   // Twice.
  EXPECT_FALSE((*exporter)->WriteFloat(kEmbedTokensName, Tensor({3}, 1.0f)).ok());  // Shape.
  EXPECT_FALSE((*exporter)->WriteFloat("model.bogus", Tensor({3}, 1.0f)).ok());
  auto result = (*exporter)->Commit();
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("never written"));
  EXPECT_TRUE(ListFileNames(out).empty());
}

TEST(ExportAwqTest, OutputDirMustNotBeTheModelDir) {
  IoTempDir dir;
  std::string src = MakeSource(dir, "LlamaForCausalLM", true);
  std::vector<std::string> before = ListFileNames(src);
  auto config = LoadModelConfig(src);
  auto exporter = AwqExporter::Create(*config, Options(src, src + "/."));
  EXPECT_EQ(exporter.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(exporter.status().message()), HasSubstr("is the model directory"));
  EXPECT_EQ(ListFileNames(src), before);
  exporter = AwqExporter::Create(*config, Options(src, src + "/awq/out"));
  EXPECT_THAT(std::string(exporter.status().message()), HasSubstr("or inside it"));
  EXPECT_EQ(ListFileNames(src), before);  // Not even the directory was created.
  ExportOptions bad_group = Options(src, dir.Sub("out"));
  bad_group.group_size = 48;  // not a group size the formats allow
  exporter = AwqExporter::Create(*config, bad_group);
  EXPECT_EQ(exporter.status().code(), absl::StatusCode::kInvalidArgument);
  bad_group.group_size = 128;  // allowed, but the tiny model's 64 inputs do not divide by it
  exporter = AwqExporter::Create(*config, bad_group);
  EXPECT_EQ(exporter.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(std::filesystem::exists(dir.Sub("out")));
  WriteTextFile(dir.Sub("file"), "x");
  exporter = AwqExporter::Create(*config, Options(src, dir.Sub("file")));
  EXPECT_THAT(std::string(exporter.status().message()), HasSubstr("is not a directory"));
}

TEST(ExportAwqTest, StaleCheckpointFilesOfAnEarlierRunAreReplaced) {
  IoTempDir dir;
  std::string src = MakeSource(dir, "LlamaForCausalLM", true);
  std::string out = dir.Sub("out");
  ExportOptions o = Options(src, out);
  o.max_shard_bytes = 16000;
  ASSERT_TRUE(ExportRandomAwq(o).ok());
  ASSERT_TRUE(std::filesystem::exists(out + "/model.safetensors.index.json"));
  WriteTextFile(out + "/notes.txt", "user file");
  o.max_shard_bytes = kDefaultMaxShardBytes;
  ASSERT_TRUE(ExportRandomAwq(o).ok());
  EXPECT_THAT(CheckOutputFormat(out, src), ::testing::IsEmpty());
  EXPECT_FALSE(std::filesystem::exists(out + "/model.safetensors.index.json"));
  EXPECT_EQ(ReadTextFile(out + "/notes.txt"), "user file");
}

TEST(ExportAwqTest, ExtraFilesAreCommittedTogether) {
  IoTempDir dir;
  std::string src = MakeSource(dir, "MistralForCausalLM", false);
  auto config = LoadModelConfig(src);
  std::string out = dir.Sub("out");
  auto exporter = AwqExporter::Create(*config, Options(src, out));
  ASSERT_TRUE(exporter.ok());
  ASSERT_TRUE((*exporter)->AddFile("quant_report.json", "{}\n").ok());
  EXPECT_FALSE((*exporter)->AddFile("quant_report.json", "{}\n").ok());
  EXPECT_TRUE(ListFinalNames(out).empty());
  exporter->reset();
  EXPECT_TRUE(ListFileNames(out).empty());
}

}  // namespace
}  // namespace quantd::engine
