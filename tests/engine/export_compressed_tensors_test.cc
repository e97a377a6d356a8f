// The compressed-tensors exporter (export/compressed_tensors_export.h): the repacking from the GEMM
// form against compressed-tensors' pack_to_int32 (natural nibble order along the input, zero
// points along the output, +8 offset storage), the state dict, quantization_config, and whole
// exports of random models (asymmetric group, symmetric per-channel, bfloat16) read back.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>

#include "awq/gemm_packing.h"
#include "export/awq_export.h"
#include "export/compressed_tensors_export.h"
#include "io/safetensors_file.h"
#include "model/architecture.h"
#include "testing/io_random_export.h"
#include "testing/io_random_model.h"
#include "testing/io_temp_dir.h"

namespace quantd::engine {
namespace {

using ::testing::ElementsAre;
using testing::IoTempDir;
using testing::ReadTextFile;

// compressed-tensors' pack_to_int32 written from its documented semantics: values (already
// offset to 0..15) packed 8 to an int32 along dim 1, element 8j+i in bits 4i..4i+3; packed_dim 0
// packs along dim 0 (transpose, pack, transpose).
std::vector<int32_t> PackToInt32(const std::vector<uint8_t>& v, int64_t rows, int64_t cols,
                                 int packed_dim) {
  if (packed_dim == 0) {
    std::vector<uint8_t> t(v.size());
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < cols; ++c) t[c * rows + r] = v[r * cols + c];
    }
    std::vector<int32_t> p = PackToInt32(t, cols, rows, 1);  // [cols, rows/8]
    std::vector<int32_t> back(p.size());
    for (int64_t c = 0; c < cols; ++c) {
      for (int64_t w = 0; w < rows / 8; ++w) back[w * cols + c] = p[c * (rows / 8) + w];
    }
    return back;
  }
  std::vector<int32_t> out(static_cast<size_t>(rows * cols / 8));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < cols / 8; ++j) {
      uint32_t word = 0;
      for (int i = 0; i < 8; ++i) word |= static_cast<uint32_t>(v[r * cols + 8 * j + i]) << (4 * i);
      out[r * (cols / 8) + j] = static_cast<int32_t>(word);
    }
  }
  return out;
}

TEST(ExportCompressedTensorsTest, RepackMatchesPackToInt32OfTheSameCodes) {
  const int64_t out = 16, in = 64, group = 32, groups = 2;
  std::mt19937 rng(1);
  std::uniform_int_distribution<int> nibble(0, 15);
  std::vector<uint8_t> codes(out * in), zeros(out * groups);
  for (uint8_t& c : codes) c = static_cast<uint8_t>(nibble(rng));
  for (uint8_t& z : zeros) z = static_cast<uint8_t>(nibble(rng));
  std::vector<float> scales(out * groups);
  for (size_t i = 0; i < scales.size(); ++i) scales[i] = 0.01f * static_cast<float>(i + 1);
  const GemmPackedLinear gemm =
      PackGemm(codes.data(), zeros.data(), scales.data(), out, in, group, std::nullopt);
  PackedLinear p;
  p.qweight = gemm.qweight;
  p.qzeros = gemm.qzeros;
  p.scales = Tensor({groups, out});
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t n = 0; n < out; ++n) p.scales.data[g * out + n] = scales[n * groups + g];
  }
  const CompressedTensorsLinear c = RepackCompressedTensors(p, /*zero_point=*/true);
  EXPECT_EQ(c.out_features, out);
  EXPECT_EQ(c.in_features, in);
  EXPECT_EQ(c.groups, groups);
  // codes [out, in] along the input; zeros [out, groups] along the output.
  EXPECT_EQ(c.weight_packed, PackToInt32(codes, out, in, 1));
  EXPECT_EQ(c.weight_zero_point, PackToInt32(zeros, out, groups, 0));
  EXPECT_EQ(c.weight_scale, scales);
  // Element (0, 0..7) is in word 0, nibble i; the signed value is nibble − 8.
  const uint32_t w0 = static_cast<uint32_t>(c.weight_packed[0]);
  for (int i = 0; i < 8; ++i) EXPECT_EQ((w0 >> (4 * i)) & 0xF, codes[i]);
  const CompressedTensorsLinear sym = RepackCompressedTensors(p, /*zero_point=*/false);
  EXPECT_TRUE(sym.weight_zero_point.empty());
}

TEST(ExportCompressedTensorsTest, PlanReplacesEachGemmTripleAndKeepsTheRest) {
  const std::vector<PlannedTensor> awq = {
      {"model.embed_tokens.weight", DType::kF16, {96, 64}},
      {"model.layers.0.self_attn.q_proj.qweight", DType::kI32, {64, 8}},
      {"model.layers.0.self_attn.q_proj.qzeros", DType::kI32, {2, 8}},
      {"model.layers.0.self_attn.q_proj.scales", DType::kF16, {2, 64}},
      {"model.layers.0.self_attn.q_proj.bias", DType::kF16, {64}},
      {"model.norm.weight", DType::kF16, {64}}};
  const std::vector<PlannedTensor> ct = PlanCompressedTensorsStateDict(awq, true, DType::kBF16);
  std::vector<std::string> names;
  for (const PlannedTensor& t : ct) names.push_back(t.name);
  EXPECT_THAT(names, ElementsAre("model.embed_tokens.weight",
                                 "model.layers.0.self_attn.q_proj.weight_packed",
                                 "model.layers.0.self_attn.q_proj.weight_scale",
                                 "model.layers.0.self_attn.q_proj.weight_zero_point",
                                 "model.layers.0.self_attn.q_proj.weight_shape",
                                 "model.layers.0.self_attn.q_proj.bias", "model.norm.weight"));
  EXPECT_EQ(ct[1].shape, (std::vector<int64_t>{64, 8}));  // [out, in/8]
  EXPECT_EQ(ct[2].shape, (std::vector<int64_t>{64, 2}));  // [out, groups]
  EXPECT_EQ(ct[2].dtype, DType::kBF16);
  EXPECT_EQ(ct[3].shape, (std::vector<int64_t>{8, 2}));  // [out/8, groups]
  EXPECT_EQ(ct[4].dtype, DType::kI64);
  EXPECT_EQ(ct[0].dtype, DType::kBF16);
  EXPECT_EQ(PlanCompressedTensorsStateDict(awq, false, DType::kF16).size(), 6u);  // no zeros
}

TEST(ExportCompressedTensorsTest, QuantizationConfigIsVllmsW4A16Group) {
  QuantFormat f;
  f.format = CheckpointFormat::kCompressedTensors;
  f.group_size = 64;
  const nlohmann::json q = CompressedTensorsQuantizationConfig(f, {"lm_head"});
  EXPECT_EQ(q["quant_method"], "compressed-tensors");
  EXPECT_EQ(q["format"], "pack-quantized");
  EXPECT_EQ(q["ignore"], nlohmann::json({"lm_head"}));
  const nlohmann::json& g = q["config_groups"]["group_0"];
  EXPECT_EQ(g["targets"], nlohmann::json({"Linear"}));
  EXPECT_TRUE(g["input_activations"].is_null());
  EXPECT_EQ(g["weights"]["num_bits"], 4);
  EXPECT_EQ(g["weights"]["type"], "int");
  EXPECT_EQ(g["weights"]["strategy"], "group");
  EXPECT_EQ(g["weights"]["group_size"], 64);
  EXPECT_EQ(g["weights"]["symmetric"], false);
  EXPECT_EQ(g["weights"]["dynamic"], false);
  f.group_size = kPerChannelGroup;
  f.zero_point = false;
  const nlohmann::json c = CompressedTensorsQuantizationConfig(f, {"lm_head"});
  EXPECT_EQ(c["config_groups"]["group_0"]["weights"]["strategy"], "channel");
  EXPECT_TRUE(c["config_groups"]["group_0"]["weights"]["group_size"].is_null());
  EXPECT_EQ(c["config_groups"]["group_0"]["weights"]["symmetric"], true);
}

struct ExportCase {
  int group_size;
  bool zero_point;
  OutputDtype dtype;
};

class ExportCompressedTensorsModelTest : public ::testing::TestWithParam<ExportCase> {};

TEST_P(ExportCompressedTensorsModelTest, WholeExportHasVllmsTensors) {
  const ExportCase p = GetParam();
  IoTempDir dir;
  testing::RandomModelOptions m;
  m.config = testing::TinyConfig("Qwen2ForCausalLM", /*tied=*/true);
  m.output_dir = dir.Sub("src");
  m.seed = 5;
  ASSERT_TRUE(testing::WriteRandomModel(m).ok());
  ExportOptions o;
  o.model_dir = m.output_dir;
  o.output_dir = dir.Sub("out");
  o.format = CheckpointFormat::kCompressedTensors;
  o.group_size = p.group_size;
  o.zero_point = p.zero_point;
  o.output_dtype = p.dtype;
  ASSERT_TRUE(testing::ExportRandomAwq(o).ok());
  EXPECT_THAT(testing::ListFileNames(o.output_dir),
              ElementsAre("config.json", "model.safetensors", "modules_to_not_convert.txt"));
  const nlohmann::json config = nlohmann::json::parse(ReadTextFile(o.output_dir + "/config.json"));
  EXPECT_EQ(config["quantization_config"]["quant_method"], "compressed-tensors");
  EXPECT_EQ(config["torch_dtype"], OutputDtypeName(p.dtype));
  auto file = SafetensorsFile::Open(o.output_dir + "/model.safetensors");
  ASSERT_TRUE(file.ok()) << file.status();
  const DType fdt = p.dtype == OutputDtype::kBFloat16 ? DType::kBF16 : DType::kF16;
  const std::string q = "model.layers.1.self_attn.q_proj.";  // hidden 64 → q 64 × 64
  const SafetensorsEntry* packed = (*file)->Find(q + "weight_packed");
  ASSERT_NE(packed, nullptr);
  EXPECT_EQ(packed->dtype, DType::kI32);
  EXPECT_EQ(packed->shape, (std::vector<int64_t>{64, 8}));
  const int64_t groups = p.group_size > 0 ? 64 / p.group_size : 1;
  const SafetensorsEntry* scale = (*file)->Find(q + "weight_scale");
  ASSERT_NE(scale, nullptr);
  EXPECT_EQ(scale->dtype, fdt);
  EXPECT_EQ(scale->shape, (std::vector<int64_t>{64, groups}));
  const SafetensorsEntry* zp = (*file)->Find(q + "weight_zero_point");
  if (p.zero_point) {
    ASSERT_NE(zp, nullptr);
    EXPECT_EQ(zp->shape, (std::vector<int64_t>{8, groups}));
  } else {
    EXPECT_EQ(zp, nullptr);
  }
  const SafetensorsEntry* shape = (*file)->Find(q + "weight_shape");
  ASSERT_NE(shape, nullptr);
  EXPECT_EQ(shape->dtype, DType::kI64);
  int64_t dims[2];
  std::memcpy(dims, (*file)->Bytes(*shape).data(), sizeof(dims));
  EXPECT_EQ(dims[0], 64);
  EXPECT_EQ(dims[1], 64);
  EXPECT_EQ((*file)->Find(q + "bias")->dtype, fdt);
  EXPECT_EQ((*file)->Find(q + "qweight"), nullptr);
  EXPECT_EQ((*file)->Find("model.embed_tokens.weight")->dtype, fdt);
}

INSTANTIATE_TEST_SUITE_P(Cases, ExportCompressedTensorsModelTest,
                         ::testing::Values(ExportCase{32, true, OutputDtype::kFloat16},
                                           ExportCase{-1, false, OutputDtype::kFloat16},
                                           ExportCase{64, true, OutputDtype::kBFloat16}));

TEST(ExportCompressedTensorsTest, GemmRunsQuantConfigIsRemovedUnderACompressedTensorsExport) {
  IoTempDir dir;
  testing::RandomModelOptions m;
  m.config = testing::TinyConfig("LlamaForCausalLM", /*tied=*/false);
  m.output_dir = dir.Sub("src");
  ASSERT_TRUE(testing::WriteRandomModel(m).ok());
  ExportOptions o;
  o.model_dir = m.output_dir;
  o.output_dir = dir.Sub("out");
  o.group_size = 32;
  ASSERT_TRUE(testing::ExportRandomAwq(o).ok());
  ASSERT_TRUE(std::filesystem::exists(o.output_dir + "/quant_config.json"));
  o.format = CheckpointFormat::kCompressedTensors;
  ASSERT_TRUE(testing::ExportRandomAwq(o).ok());
  EXPECT_FALSE(std::filesystem::exists(o.output_dir + "/quant_config.json"));
}

}  // namespace
}  // namespace quantd::engine
