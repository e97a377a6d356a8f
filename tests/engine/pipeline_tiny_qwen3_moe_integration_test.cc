// Acceptance on the really trained MoE model (tests/data/models/tiny-qwen3-moe-wp: Qwen3-MoE, 8
// experts, 2 per token): Quantize() on the CPU reference with the first 128 calibration texts,
// plain (no chat template), 512-token blocks; held-out perplexity per the protocol of its
// SOURCES (48 × 512 predictions) must be ≤ 53.85 (float 53.51, round-to-nearest 54.37, issue
// 13), with the router's input columns scaled as quantd does. The output must pass every rule of
// the output format, routers listed in modules_to_not_convert, and the report must count the
// experts' calibration tokens.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "quantd/engine/quantize.h"
#include "testing/io_output_format_checker.h"
#include "testing/io_temp_dir.h"
#include "tests/testing/test_data.h"

namespace quantd::engine {
namespace {

const std::string kModel = quantd::test_data::Path("models/tiny-qwen3-moe-wp");

std::string WorkDir(const std::string& name) {
  const std::string dir = std::string(QUANTD_BINARY_DIR) + "/pipeline_tiny_qwen3_moe/" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

TEST(PipelineTinyQwen3MoeTest, HeldOutPerplexityMeetsTarget) {
  const std::string dir = WorkDir("plain");
  QuantizeOptions o;
  o.model_dir = kModel + "/model";
  o.output_dir = dir + "/out";
  o.calib_jsonl =
      testing::WriteFirstLines(kModel + "/calib.jsonl", 128, dir + "/calib_first.jsonl");
  o.num_calib = 128;
  o.max_seq_len = 512;
  o.apply_chat_template = false;
  o.eval_text = kModel + "/heldout.txt";
  o.backend = BackendKind::kCpu;
  absl::StatusOr<QuantizeResult> result = Quantize(o, nullptr, nullptr);
  ASSERT_TRUE(result.ok()) << result.status();

  std::ifstream in(result->report_path);
  const nlohmann::json report = nlohmann::json::parse(in, nullptr, false);
  ASSERT_FALSE(report.is_discarded());
  const double ppl_float = report["evaluation"]["perplexity_float"].get<double>();
  const double ppl_quant = report["evaluation"]["perplexity_quantized"].get<double>();
  std::printf("tiny-qwen3-moe-wp held-out perplexity: float %.3f, quantized %.3f\n", ppl_float,
              ppl_quant);
  EXPECT_NEAR(ppl_float, 53.51, 0.05);
  EXPECT_LE(ppl_quant, 53.85);
  ASSERT_EQ(report["layers"].size(), 4u);
  // Every layer: 8 experts' routed tokens (2 per token) and which got too few.
  int64_t routed = 0;
  for (const auto& n : report["layers"][0]["moe"]["tokens_per_expert"]) routed += n.get<int64_t>();
  EXPECT_EQ(report["layers"][0]["moe"]["tokens_per_expert"].size(), 8u);
  EXPECT_GT(routed, 0);
  EXPECT_TRUE(report["moe"].contains("under_calibrated_experts"));

  for (const std::string& problem :
       testing::CheckOutputFormat(o.output_dir, o.model_dir, {.group_size = 128})) {
    ADD_FAILURE() << problem;
  }
}

}  // namespace
}  // namespace quantd::engine
