// Calibration with the real tokenizer and chat template of tiny-qwen2-wp: the template renders
// (no fallback), the rendered prompt is stripped before encoding, and blocks decode back to the
// chat-wrapped texts.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "calib/calibration.h"
#include "testing/io_temp_dir.h"
#include "tests/testing/test_data.h"

namespace quantd::engine {
namespace {

using ::testing::IsEmpty;
using ::testing::StartsWith;

const std::string kModel = quantd::test_data::Path("models/tiny-qwen2-wp/model");
const std::string kCalib = quantd::test_data::Path("models/tiny-qwen2-wp/calib.jsonl");

class Logs : public EngineObserver {
 public:
  void OnLog(LogLevel level, const std::string& message) override {
    if (level == LogLevel::kWarning) warnings.push_back(message);
  }
  std::vector<std::string> warnings;
};

TEST(CalibrationTinyQwen2Test, ChatTemplateRendersAndBlocksDecodeBack) {
  auto tok = tokenizer::Tokenizer::FromModelDir(kModel);
  ASSERT_TRUE(tok.ok()) << tok.status();
  CalibrationChat chat = LoadCalibrationChat(kModel);
  ASSERT_TRUE(chat.tmpl.has_value()) << chat.unavailable_reason;
  CalibrationOptions o;
  o.calib_jsonl = kCalib;
  o.num_calib = 4;
  o.max_seq_len = 128;
  o.system_prompt = "You are a helpful assistant.";
  o.vocab_size = 4096;
  Logs logs;
  auto set = BuildCalibration(o, tok->get(), &chat, &logs);
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_THAT(logs.warnings, IsEmpty());
  auto text = (*tok)->Decode(set->block(0));
  ASSERT_TRUE(text.ok());
  EXPECT_THAT(*text, StartsWith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
                                "<|im_start|>user\n"));
  EXPECT_EQ(set->counts.sampled, 4);
  EXPECT_EQ(set->counts.valid_rows, 256);
}

TEST(CalibrationTinyQwen2Test, PlainTextsAsTheQualityProtocolUsesThem) {
  auto tok = tokenizer::Tokenizer::FromModelDir(kModel);
  ASSERT_TRUE(tok.ok()) << tok.status();
  CalibrationOptions o;
  o.calib_jsonl = kCalib;
  o.num_calib = 256;  // The whole file, in file order.
  o.max_seq_len = 512;
  o.apply_chat_template = false;
  auto set = BuildCalibration(o, tok->get(), nullptr, nullptr);
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_GT(set->num_blocks(), 10);
  EXPECT_EQ(set->counts.texts_used + set->counts.texts_over_length, 256);
  EXPECT_EQ(set->counts.tokens, set->num_blocks() * 512 + set->counts.tokens_dropped);
}

}  // namespace
}  // namespace quantd::engine
