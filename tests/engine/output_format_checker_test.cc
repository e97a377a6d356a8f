// The output-format checker finds a violation of every rule of spec/output-format.md: each test
// breaks one rule in an otherwise valid export and expects a violation of that rule.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>

#include "io/safetensors_file.h"
#include "io/safetensors_writer.h"
#include "testing/io_output_format_checker.h"
#include "testing/io_random_export.h"
#include "testing/io_random_model.h"
#include "testing/io_temp_dir.h"

namespace quantd::engine::testing {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

namespace fs = std::filesystem;

struct StoredTensor {
  PlannedTensor plan;
  std::vector<uint8_t> bytes;
};

// Rewrites a safetensors file after `edit` changes its tensors or metadata.
void Rewrite(const std::string& path,
             const std::function<void(std::vector<StoredTensor>&,
                                      std::map<std::string, std::string>&)>& edit) {
  std::vector<StoredTensor> tensors;
  std::map<std::string, std::string> metadata;
  {
    auto file = SafetensorsFile::Open(path);
    ASSERT_TRUE(file.ok()) << file.status();
    metadata = (*file)->metadata();
    for (const SafetensorsEntry& e : (*file)->entries()) {
      auto bytes = (*file)->Bytes(e);
      tensors.push_back({{e.name, e.dtype, e.shape}, {bytes.begin(), bytes.end()}});
    }
  }
  edit(tensors, metadata);
  std::vector<PlannedTensor> plan;
  for (const StoredTensor& t : tensors) plan.push_back(t.plan);
  auto writer = SafetensorsWriter::Create(path, plan, metadata);
  ASSERT_TRUE(writer.ok()) << writer.status();
  for (const StoredTensor& t : tensors) ASSERT_TRUE((*writer)->Write(t.plan.name, t.bytes).ok());
  ASSERT_TRUE((*writer)->Finish().ok());
}

StoredTensor* FindTensor(std::vector<StoredTensor>& ts, const std::string& name) {
  for (StoredTensor& t : ts) {
    if (t.plan.name == name) return &t;
  }
  return nullptr;
}

class OutputFormatCheckerTest : public ::testing::Test {
 protected:
  // A valid export of a tied Qwen2 model (single file), or untied Llama (sharded).
  void Export(bool tied_qwen2 = true, int64_t shard_bytes = 5'000'000'000,
              std::vector<std::string> not_converted = {"lm_head"}) {
    RandomModelOptions m;
    m.config = TinyConfig(tied_qwen2 ? "Qwen2ForCausalLM" : "LlamaForCausalLM", tied_qwen2);
    m.output_dir = dir_.Sub("src");
    ASSERT_TRUE(WriteRandomModel(m).ok());
    WriteTextFile(m.output_dir + "/tokenizer_config.json", R"({"bos_token": null})");
    WriteTextFile(m.output_dir + "/merges.txt", "#version: 0.2\n");
    src_ = m.output_dir;
    out_ = dir_.Sub("out");
    ExportOptions o;
    o.model_dir = src_;
    o.output_dir = out_;
    o.group_size = 32;
    o.max_shard_bytes = shard_bytes;
    o.modules_to_not_convert = std::move(not_converted);
    auto artifacts = ExportRandomAwq(o);
    ASSERT_TRUE(artifacts.ok()) << artifacts.status();
  }

  std::vector<std::string> Check() { return CheckOutputFormat(out_, src_); }

  void EditConfig(const std::function<void(nlohmann::json&)>& edit) {
    nlohmann::json c = nlohmann::json::parse(ReadTextFile(out_ + "/config.json"));
    edit(c);
    WriteTextFile(out_ + "/config.json", c.dump(2));
  }

  void ExpectViolation(const std::string& rule, const std::string& detail = "") {
    std::vector<std::string> v = Check();
    EXPECT_THAT(v, Contains(StartsWith(rule + ": ")));
    if (!detail.empty()) {
      EXPECT_THAT(v, Contains(HasSubstr(detail)));
    }
  }

  IoTempDir dir_;
  std::string src_, out_;
};

TEST_F(OutputFormatCheckerTest, ValidExportsPass) {
  Export();
  EXPECT_THAT(Check(), IsEmpty());
}

TEST_F(OutputFormatCheckerTest, Rule1QuantMethodAndKeyNames) {
  Export();
  EditConfig([](nlohmann::json& c) { c["quantization_config"]["quant_method"] = "gptq"; });
  ExpectViolation("quantization_config", "quant_method");
  EditConfig([](nlohmann::json& c) {
    c["quantization_config"] = {{"quant_method", "awq"},
                                {"w_bit", 4},
                                {"q_group_size", 32},
                                {"zero_point", true},
                                {"version", "gemm"}};
  });
  ExpectViolation("quantization_config", "bits must be 4");
  EditConfig([](nlohmann::json& c) { c.erase("quantization_config"); });
  ExpectViolation("quantization_config", "missing");
}

TEST_F(OutputFormatCheckerTest, Rule2BitsGroupSizeZeroPointVersion) {
  Export();
  const std::pair<const char*, nlohmann::json> edits[] = {
      {"bits", 8}, {"group_size", 48}, {"zero_point", false}, {"version", "gemv"}};
  for (const auto& [key, value] : edits) {
    EditConfig([&](nlohmann::json& c) { c["quantization_config"][key] = value; });
    ExpectViolation("quantization_config", key);
    EditConfig([&](nlohmann::json& c) {
      c["quantization_config"] = {{"quant_method", "awq"}, {"bits", 4},
                                  {"group_size", 32},      {"zero_point", true},
                                  {"version", "gemm"},     {"modules_to_not_convert", {"lm_head"}}};
    });
    EXPECT_THAT(Check(), IsEmpty());
  }
}

TEST_F(OutputFormatCheckerTest, Rule3FloatDtypeInConfigAndTensors) {
  Export();
  EditConfig([](nlohmann::json& c) { c["torch_dtype"] = "bfloat16"; });
  ExpectViolation("dtype", "torch_dtype");
  EditConfig([](nlohmann::json& c) { c["torch_dtype"] = "float16"; });
  Rewrite(out_ + "/model.safetensors", [](auto& ts, auto&) {
    StoredTensor* t = FindTensor(ts, "model.norm.weight");
    t->plan.dtype = DType::kBF16;
  });
  ExpectViolation("dtype", "model.norm.weight has dtype BF16, expected F16");
}

TEST_F(OutputFormatCheckerTest, GemmTensorShapesAndDtypes) {
  Export();
  Rewrite(out_ + "/model.safetensors", [](auto& ts, auto&) {
    FindTensor(ts, "model.layers.0.mlp.up_proj.qweight")->plan.shape = {16, 64};
    StoredTensor* s = FindTensor(ts, "model.layers.1.self_attn.q_proj.scales");
    s->plan.dtype = DType::kBF16;
  });
  ExpectViolation("tensors",
                  "model.layers.0.mlp.up_proj.qweight has shape [16, 64], expected "
                  "[64, 16]");
  ExpectViolation("tensors", "q_proj.scales has dtype BF16, expected F16");
}

TEST_F(OutputFormatCheckerTest, MissingBiasAndNonPositiveScales) {
  Export();
  Rewrite(out_ + "/model.safetensors", [](auto& ts, auto&) {
    ts.erase(std::find_if(ts.begin(), ts.end(), [](const StoredTensor& t) {
      return t.plan.name == "model.layers.0.self_attn.v_proj.bias";
    }));
    std::fill(FindTensor(ts, "model.layers.0.mlp.down_proj.scales")->bytes.begin(),
              FindTensor(ts, "model.layers.0.mlp.down_proj.scales")->bytes.end(), 0);
  });
  ExpectViolation("tensors", "model.layers.0.self_attn.v_proj.bias is missing");
  ExpectViolation("tensors", "down_proj.scales holds a non-positive");
}

TEST_F(OutputFormatCheckerTest, Rule5FusedLayersAllOrNothing) {
  Export(true, 5'000'000'000, {"lm_head", "model.layers.0.self_attn.q_proj"});
  ExpectViolation("fused", "model.layers.0.self_attn q/k/v");
}

TEST_F(OutputFormatCheckerTest, Rule6AmbiguousModuleNames) {
  Export(true, 5'000'000'000, {"lm_head", "mlp.gate"});
  ExpectViolation("modules_to_not_convert", "\"mlp.gate\" also matches");
  ExpectViolation("fused", "gate/up");
}

TEST_F(OutputFormatCheckerTest, Rule7TiedModelsHaveNoLmHead) {
  Export();
  Rewrite(out_ + "/model.safetensors", [](auto& ts, auto& meta) {
    StoredTensor head = *FindTensor(ts, "model.embed_tokens.weight");
    head.plan.name = "lm_head.weight";
    ts.push_back(head);
    meta.erase("lm_head.weight");
  });
  ExpectViolation("tied", "lm_head.weight is not expected");
  ExpectViolation("tied", "metadata lacks");
}

TEST_F(OutputFormatCheckerTest, UntiedModelsNeedLmHead) {
  Export(false);
  EXPECT_THAT(Check(), IsEmpty());
  Rewrite(out_ + "/model.safetensors", [](auto& ts, auto&) {
    ts.erase(std::find_if(ts.begin(), ts.end(),
                          [](const StoredTensor& t) { return t.plan.name == "lm_head.weight"; }));
  });
  ExpectViolation("tensors", "lm_head.weight is missing");
}

TEST_F(OutputFormatCheckerTest, Rule8ShardNamesAndIndex) {
  Export(false, 16000);
  EXPECT_THAT(Check(), IsEmpty());
  nlohmann::json index =
      nlohmann::json::parse(ReadTextFile(out_ + "/model.safetensors.index.json"));
  nlohmann::json bad = index;
  bad["metadata"]["total_size"] = 1;
  WriteTextFile(out_ + "/model.safetensors.index.json", bad.dump());
  ExpectViolation("shards", "total_size");
  bad = index;
  bad["weight_map"]["model.norm.weight"] = "model-00001-of-00009.safetensors";
  WriteTextFile(out_ + "/model.safetensors.index.json", bad.dump());
  ExpectViolation("shards", "missing file model-00001-of-00009.safetensors");
  WriteTextFile(out_ + "/model.safetensors.index.json", index.dump());
  EXPECT_THAT(Check(), IsEmpty());
  fs::rename(out_ + "/model-00002-of-00005.safetensors",
             out_ + "/model-00002-of-00006.safetensors");
  ExpectViolation("shards", "expected model-00002-of-00005.safetensors");
  fs::remove(out_ + "/model.safetensors.index.json");
  ExpectViolation("shards", "without model.safetensors.index.json");
}

TEST_F(OutputFormatCheckerTest, SingleFileNaming) {
  Export();
  fs::rename(out_ + "/model.safetensors", out_ + "/model-00001-of-00001.safetensors");
  ExpectViolation("shards");
}

TEST_F(OutputFormatCheckerTest, SourceConfigFieldsPreserved) {
  Export();
  EditConfig([](nlohmann::json& c) { c.erase("rms_norm_eps"); });
  ExpectViolation("config", "\"rms_norm_eps\"");
}

TEST_F(OutputFormatCheckerTest, TokenizerAndGenerationFilesCopied) {
  Export();
  fs::remove(out_ + "/merges.txt");
  ExpectViolation("files", "merges.txt was not copied");
  WriteTextFile(out_ + "/tokenizer_config.json", "{}");
  ExpectViolation("files", "tokenizer_config.json differs");
}

TEST_F(OutputFormatCheckerTest, SeedFiles) {
  Export();
  WriteTextFile(out_ + "/quant_config.json",
                R"({"zero_point": true, "q_group_size": 32, "w_bit": 4, "version": "GEMM"})");
  ExpectViolation("quant_config.json");
  fs::remove(out_ + "/quant_config.json");
  ExpectViolation("quant_config.json", "missing");
  WriteTextFile(out_ + "/modules_to_not_convert.txt", "lm_head");
  ExpectViolation("modules_to_not_convert.txt");
}

TEST_F(OutputFormatCheckerTest, NoLeftoverTemporaries) {
  Export();
  WriteTextFile(out_ + "/.model.safetensors.quantd-tmp", "");
  ExpectViolation("temporaries", ".model.safetensors.quantd-tmp");
}

TEST_F(OutputFormatCheckerTest, UnexpectedTensorsAndBrokenFiles) {
  Export();
  Rewrite(out_ + "/model.safetensors", [](auto& ts, auto&) {
    StoredTensor extra = *FindTensor(ts, "model.norm.weight");
    extra.plan.name = "model.layers.0.mlp.up_proj.weight";
    ts.push_back(extra);
  });
  ExpectViolation("tensors", "model.layers.0.mlp.up_proj.weight is not expected");
  WriteTextFile(out_ + "/model.safetensors", "garbage");
  ExpectViolation("safetensors", "invalid safetensors header");
}

}  // namespace
}  // namespace quantd::engine::testing
