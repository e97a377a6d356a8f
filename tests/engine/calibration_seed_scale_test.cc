// The seed's full calibration scale on the CPU: an 8 MB calib_8192.jsonl (8192 texts of realistic,
// varied lengths) chat-wrapped with the seed's system prompt into blocks of 2048 tokens by the real
// tokenizer and chat template of tiny-qwen2-wp (demo/models) — what a job at the seed's defaults
// runs before its first layer — and the engine's memory plan for the blocks it gives, which the
// scheduler places by (the whole run on a GPU: docs/perf.md, "The seed's full calibration scale").
#include <filesystem>
#include <fstream>
#include <random>

#include "absl/time/clock.h"
#include "calib/calibration.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "quantd/memory_plan/memory_plan.h"

namespace quantd::engine {
namespace {

namespace fs = std::filesystem;

const std::string kModel = std::string(QUANTD_SOURCE_DIR) + "/demo/models/tiny-qwen2-wp";

TEST(CalibrationSeedScaleTest, EightMegabytesOf8192TextsMakeThe2048TokenBlocksOfTheSeed) {
  std::vector<std::string> texts;
  {
    std::ifstream in(kModel + "/calib.jsonl");
    std::string line;
    while (std::getline(in, line)) texts.push_back(nlohmann::json::parse(line)["text"]);
  }
  const std::string path = std::string(QUANTD_BINARY_DIR) + "/calibration_seed_scale.jsonl";
  {
    std::ofstream out(path);
    std::mt19937 rng(8192);
    std::lognormal_distribution<double> chars(std::log(700.0), 0.8);  // median 700, mean ~1 KB
    for (int i = 0; i < 8192; ++i) {
      const size_t n = std::clamp<size_t>(static_cast<size_t>(chars(rng)), 64, 6000);
      std::string t;
      while (t.size() < n) t += texts[rng() % texts.size()] + " ";
      out << nlohmann::json({{"text", t.substr(0, n)}}).dump() << "\n";
    }
  }
  ASSERT_GT(fs::file_size(path), 7'000'000u);
  auto tok = tokenizer::Tokenizer::FromModelDir(kModel + "/model");
  ASSERT_TRUE(tok.ok()) << tok.status();
  CalibrationChat chat = LoadCalibrationChat(kModel + "/model");
  ASSERT_TRUE(chat.tmpl.has_value()) << chat.unavailable_reason;
  QuantizeOptions defaults;  // the seed's: 8192 texts, 2048 tokens, its system prompt
  defaults.calib_jsonl = path;
  const CalibrationOptions o = CalibrationOptions::From(defaults, 4096);
  ASSERT_EQ(o.num_calib, 8192);
  ASSERT_EQ(o.max_seq_len, 2048);
  ASSERT_EQ(o.system_prompt, kSeedSystemPrompt);
  const absl::Time start = absl::Now();
  absl::StatusOr<CalibrationSet> set = BuildCalibration(o, tok->get(), &chat, nullptr);
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  ASSERT_TRUE(set.ok()) << set.status();
  // Every 16th text is held out for the quality report (docs/quality.md): 512 of the 8192, the
  // other 7680 calibrate.
  EXPECT_EQ(set->counts.held_out_rows, 512);
  EXPECT_EQ(set->counts.sampled, 8192 - 512);
  EXPECT_EQ(set->counts.texts_used + set->counts.texts_over_length, 8192 - 512);
  EXPECT_GT(set->counts.texts_used, 7500);
  EXPECT_EQ(set->seq_len, 2048);
  EXPECT_EQ(set->num_blocks(), set->counts.blocks);
  EXPECT_GT(set->num_blocks(), 1000);
  std::printf("[seed scale] %.1f MB, %lld texts used, %lld tokens, %lld blocks of 2048, %.1f s\n",
              static_cast<double>(fs::file_size(path)) / 1e6,
              static_cast<long long>(set->counts.texts_used),
              static_cast<long long>(set->counts.tokens), static_cast<long long>(set->num_blocks()),
              seconds);
  // The memory plan of these blocks for Qwen2.5-0.5B on an 80 GiB GPU: hidden states in host
  // memory, worked on in chunks — it fits (the old estimate said about 240 GB).
  const memory_plan::LayerGeometry qwen05b{896, 4864, 14, 2, 64, 2};
  const memory_plan::RunPlan plan = memory_plan::PlanRun(
      qwen05b, set->num_blocks(), 2048, memory_plan::AvailableOnGpu(80.0 * (1 << 30), 0));
  EXPECT_TRUE(plan.fits());
  EXPECT_GT(plan.chunks, 1);
  fs::remove(path);
}

}  // namespace
}  // namespace quantd::engine
