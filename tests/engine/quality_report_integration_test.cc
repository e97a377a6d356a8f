// The checkpoint formats and the quality report end to end through Quantize() on the CPU
// reference:
//  - the compressed-tensors checkpoint of a job, read by the independent numpy reader
//    (tests/tools/awq_reader.py), has the same logits error as the GEMM checkpoint of the same job
//    (± 0.5 %), on the AutoAWQ parity fixture, tiny-qwen2-wp and tiny-qwen3-moe-wp (experts
//    quantized, routers in ignore); symmetric, per-channel and
//    bfloat16 compressed-tensors checkpoints read back and beat round-to-nearest's error bound;
//  - every default job reports its quality (held-out perplexities, each scaling group's error
//    with round-to-nearest and with AWQ, vLLM's tensor-parallel sizes) in quant_report.json and
//    to its observer; --max_ppl_increase fails a job above it, with the figures, writing nothing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "nlohmann/json.hpp"
#include "quantd/engine/quantize.h"
#include "testing/awq_reader_run.h"
#include "testing/io_temp_dir.h"
#include "tests/testing/test_data.h"

namespace quantd::engine {
namespace {

using ::testing::HasSubstr;

std::string Fixture() { return quantd::test_data::Path("fixtures/autoawq-parity/llama-mha"); }
std::string TinyQwen2() { return quantd::test_data::Path("models/tiny-qwen2-wp"); }

class QualityObserver : public EngineObserver {
 public:
  void OnQuality(const QualitySummary& q) override { quality = q; }
  std::optional<QualitySummary> quality;
};

nlohmann::json ReadJson(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in, nullptr, false);
}

double ReaderError(const std::string& float_dir, const std::string& rows,
                   const std::string& quantized_dir) {
  testing::AwqReaderRun run;
  run.float_dir = float_dir;
  run.calib_jsonl = rows;
  run.rows = 4;
  run.quantized_dir = quantized_dir;
  absl::StatusOr<double> e = testing::ReaderRelativeLogitsError(run);
  if (!e.ok()) {
    ADD_FAILURE() << e.status();
    return std::nan("");
  }
  return *e;
}

QuantizeOptions FixtureOptions(const std::string& out) {
  QuantizeOptions o;
  o.model_dir = Fixture() + "/model";
  o.output_dir = out;
  o.calib_jsonl = Fixture() + "/calib.jsonl";
  o.num_calib = 16;
  o.max_seq_len = 128;
  o.apply_chat_template = false;
  o.backend = BackendKind::kCpu;
  o.artifact_digests = false;
  return o;
}

QuantizeOptions TinyQwen2Options(const std::string& dir, const std::string& out) {
  // The first 40 calibration texts (the held-out slice takes rows 15 and 31), 256-token blocks.
  std::ifstream in(TinyQwen2() + "/calib.jsonl");
  const std::string calib = dir + "/calib40.jsonl";
  std::ofstream w(calib);
  std::string line;
  for (int i = 0; i < 40 && std::getline(in, line); ++i) w << line << "\n";
  QuantizeOptions o;
  o.model_dir = TinyQwen2() + "/model";
  o.output_dir = out;
  o.calib_jsonl = calib;
  o.max_seq_len = 256;
  o.apply_chat_template = false;
  o.backend = BackendKind::kCpu;
  o.artifact_digests = false;
  return o;
}

// The same job in both formats; returns {gemm error, compressed-tensors error}.
std::pair<double, double> BothFormats(QuantizeOptions o, const std::string& dir,
                                      const std::string& rows) {
  o.output_dir = dir + "/gemm";
  o.dump_calib = dir + "/calib_dump.json";
  absl::StatusOr<QuantizeResult> gemm = Quantize(o, nullptr, nullptr);
  EXPECT_TRUE(gemm.ok()) << gemm.status();
  if (rows != o.calib_jsonl) {
    EXPECT_TRUE(testing::WriteReaderRowsFromDump(o.dump_calib, 4, rows).ok());
  }
  o.dump_calib.clear();
  o.output_dir = dir + "/ct";
  o.format = CheckpointFormat::kCompressedTensors;
  absl::StatusOr<QuantizeResult> ct = Quantize(o, nullptr, nullptr);
  EXPECT_TRUE(ct.ok()) << ct.status();
  return {ReaderError(o.model_dir, rows, dir + "/gemm"),
          ReaderError(o.model_dir, rows, dir + "/ct")};
}

TEST(QualityReportTest, FixtureCompressedTensorsMatchesGemm) {
  testing::IoTempDir dir;
  const std::string rows = Fixture() + "/calib.jsonl";
  const auto [gemm, ct] = BothFormats(FixtureOptions(""), dir.path(), rows);
  const double rtn = ReaderError(Fixture() + "/model", rows, "");
  std::printf("[formats] llama-mha: logits error gemm %.5f compressed-tensors %.5f rtn %.5f\n",
              gemm, ct, rtn);
  EXPECT_LE(std::fabs(ct - gemm) / gemm, 0.005);
  EXPECT_LT(gemm, rtn);
  const nlohmann::json config = ReadJson(dir.Sub("ct/config.json"));
  EXPECT_EQ(config["quantization_config"]["quant_method"], "compressed-tensors");
}

TEST(QualityReportTest, TinyQwen2CompressedTensorsMatchesGemm) {
  testing::IoTempDir dir;
  const std::string rows = dir.Sub("reader_rows.jsonl");
  const auto [gemm, ct] = BothFormats(TinyQwen2Options(dir.path(), ""), dir.path(), rows);
  const double rtn = ReaderError(TinyQwen2() + "/model", rows, "");
  std::printf("[formats] tiny-qwen2-wp: logits error gemm %.5f compressed-tensors %.5f rtn %.5f\n",
              gemm, ct, rtn);
  EXPECT_LE(std::fabs(ct - gemm) / gemm, 0.005);
  EXPECT_LT(gemm, rtn);
}

// A mixture of experts: every expert's Linears are quantized in both formats (weight_packed per
// expert), the routers stay float and are listed in compressed-tensors' ignore by full name.
TEST(QualityReportTest, TinyQwen3MoeCompressedTensorsMatchesGemm) {
  testing::IoTempDir dir;
  const std::string model = quantd::test_data::Path("models/tiny-qwen3-moe-wp");
  QuantizeOptions o;
  o.model_dir = model + "/model";
  o.calib_jsonl = testing::WriteFirstLines(model + "/calib.jsonl", 24, dir.Sub("calib24.jsonl"));
  o.max_seq_len = 256;
  o.apply_chat_template = false;
  o.backend = BackendKind::kCpu;
  o.artifact_digests = false;
  const std::string rows = dir.Sub("reader_rows.jsonl");
  const auto [gemm, ct] = BothFormats(o, dir.path(), rows);
  const double rtn = ReaderError(o.model_dir, rows, "");
  std::printf(
      "[formats] tiny-qwen3-moe-wp: logits error gemm %.5f compressed-tensors %.5f rtn %.5f\n",
      gemm, ct, rtn);
  EXPECT_LE(std::fabs(ct - gemm) / gemm, 0.005);
  const nlohmann::json q = ReadJson(dir.Sub("ct/config.json"))["quantization_config"];
  const nlohmann::json& ignore = q["ignore"];
  EXPECT_EQ(ignore[0], "lm_head");
  EXPECT_NE(std::find(ignore.begin(), ignore.end(), "model.layers.0.mlp.gate"), ignore.end())
      << ignore.dump();
  const nlohmann::json gemm_config = ReadJson(dir.Sub("gemm/config.json"))["quantization_config"];
  const nlohmann::json& modules = gemm_config["modules_to_not_convert"];
  EXPECT_NE(std::find(modules.begin(), modules.end(), "model.layers.3.mlp.gate"), modules.end())
      << modules.dump();
}

struct Variant {
  const char* name;
  int group_size;
  bool zero_point;
  OutputDtype dtype;
};

class CompressedTensorsVariantTest : public ::testing::TestWithParam<Variant> {};

// Symmetric, per-channel and bfloat16 checkpoints: the reader loads each by its config, and the
// error stays within 1.5× the group-128 asymmetric checkpoint's (round-to-nearest group 128 is
// 1.30× it on this fixture; measured: symmetric g64 0.223, per-channel 0.226, bf16 0.243 against
// 0.243).
TEST_P(CompressedTensorsVariantTest, ReadsBackWithBoundedError) {
  const Variant v = GetParam();
  testing::IoTempDir dir;
  QuantizeOptions o = FixtureOptions(dir.Sub("base"));
  ASSERT_TRUE(Quantize(o, nullptr, nullptr).ok());
  o.output_dir = dir.Sub("variant");
  o.format = CheckpointFormat::kCompressedTensors;
  o.group_size = v.group_size;
  o.zero_point = v.zero_point;
  o.output_dtype = v.dtype;
  QualityObserver observer;
  absl::StatusOr<QuantizeResult> r = Quantize(o, &observer, nullptr);
  ASSERT_TRUE(r.ok()) << r.status();
  const std::string rows = Fixture() + "/calib.jsonl";
  const double base = ReaderError(o.model_dir, rows, dir.Sub("base"));
  const double err = ReaderError(o.model_dir, rows, o.output_dir);
  std::printf("[formats] llama-mha %s: logits error %.5f (gemm g128 %.5f)\n", v.name, err, base);
  EXPECT_LT(err, 1.5 * base);
  const nlohmann::json w = ReadJson(
      o.output_dir + "/config.json")["quantization_config"]["config_groups"]["group_0"]["weights"];
  EXPECT_EQ(w["symmetric"], !v.zero_point);
  EXPECT_EQ(w["strategy"], v.group_size > 0 ? "group" : "channel");
  ASSERT_TRUE(observer.quality.has_value());
  EXPECT_TRUE(std::isfinite(observer.quality->perplexity_quantized));
}

INSTANTIATE_TEST_SUITE_P(
    Variants, CompressedTensorsVariantTest,
    ::testing::Values(Variant{"symmetric_g64", 64, false, OutputDtype::kFloat16},
                      Variant{"per_channel", -1, true, OutputDtype::kFloat16},
                      Variant{"bf16_g128", 128, true, OutputDtype::kBFloat16}),
    [](const ::testing::TestParamInfo<Variant>& i) { return std::string(i.param.name); });

TEST(QualityReportTest, DefaultJobReportsHeldOutQualityEverywhere) {
  testing::IoTempDir dir;
  QuantizeOptions o = TinyQwen2Options(dir.path(), dir.Sub("out"));
  QualityObserver observer;
  absl::StatusOr<QuantizeResult> r = Quantize(o, &observer, nullptr);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->quality.has_value());
  ASSERT_TRUE(observer.quality.has_value());
  const QualitySummary& q = *r->quality;
  EXPECT_EQ(q.source, "held_out");
  EXPECT_GT(q.tokens_scored, 0);
  EXPECT_GT(q.perplexity_float, 1.0);
  EXPECT_NEAR(q.perplexity_increase_percent,
              100.0 * (q.perplexity_quantized / q.perplexity_float - 1.0), 1e-9);
  EXPECT_LT(q.awq_to_rtn_error_ratio, 1.0);  // the search reduced the output error
  ASSERT_EQ(q.tensor_parallel.size(), 4u);
  const nlohmann::json report = ReadJson(r->report_path);
  const nlohmann::json& quality = report["quality"];
  EXPECT_EQ(quality["source"], "held_out");
  EXPECT_DOUBLE_EQ(quality["perplexity_quantized"].get<double>(), q.perplexity_quantized);
  EXPECT_EQ(report["calibration"]["held_out_rows"], 2);  // rows 15 and 31 of 40
  EXPECT_EQ(report["calibration"]["rows_sampled"], 38);
  EXPECT_TRUE(quality["vllm_tensor_parallel"].is_array());
  // Every scaling group: its output error with round-to-nearest and with AWQ, same tokens.
  for (const nlohmann::json& layer : report["layers"]) {
    ASSERT_TRUE(layer.contains("output_error"));
    for (const nlohmann::json& g : layer["scaling_groups"]) {
      ASSERT_TRUE(g.contains("rtn_loss")) << g.dump();
      EXPECT_GT(g["rtn_loss"].get<double>(), 0.0);
      EXPECT_GT(g["compare_tokens"].get<int64_t>(), 0);
    }
  }
  std::printf(
      "[quality] tiny-qwen2-wp held out: %lld tokens, perplexity float %.3f quantized "
      "%.3f (%+.3f %%), AWQ/RTN error %.3f\n",
      static_cast<long long>(q.tokens_scored), q.perplexity_float, q.perplexity_quantized,
      q.perplexity_increase_percent, q.awq_to_rtn_error_ratio);
}

TEST(QualityReportTest, PerplexityThresholdFailsTheJobWithTheFiguresAndWritesNothing) {
  testing::IoTempDir dir;
  QuantizeOptions o = FixtureOptions(dir.Sub("first"));
  absl::StatusOr<QuantizeResult> first = Quantize(o, nullptr, nullptr);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(first->quality.has_value());
  const double increase = first->quality->perplexity_increase_percent;
  ASSERT_GT(increase, 0.0) << "the fixture's quantized model should be (slightly) worse";
  o.output_dir = dir.Sub("strict");
  o.max_perplexity_increase_percent = increase / 2;
  QualityObserver observer;
  absl::StatusOr<QuantizeResult> strict = Quantize(o, &observer, nullptr);
  ASSERT_FALSE(strict.ok());
  EXPECT_EQ(strict.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(strict.status().message()),
              HasSubstr("quality check failed: the quantized model's perplexity"));
  EXPECT_THAT(std::string(strict.status().message()), HasSubstr("max_perplexity_increase_percent"));
  ASSERT_TRUE(observer.quality.has_value());  // the figures reach the observer (the job's events)
  EXPECT_DOUBLE_EQ(observer.quality->perplexity_increase_percent, increase);
  EXPECT_TRUE(testing::ListFinalNames(o.output_dir).empty());
  o.output_dir = dir.Sub("lenient");
  o.max_perplexity_increase_percent = increase * 2;
  EXPECT_TRUE(Quantize(o, nullptr, nullptr).ok());
}

}  // namespace
}  // namespace quantd::engine
