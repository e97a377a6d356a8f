// `quantize-awq tokenize`: what a user runs when calibration looks wrong. Ids must equal Hugging
// Face's (the tokenizer goldens) and the chat rendering must come from the model's own template.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "nlohmann/json.hpp"
#include "testing/io_temp_dir.h"
#include "tests/testing/test_data.h"

namespace {

const std::string kBinary = std::string(QUANTD_BINARY_DIR) + "/bin/quantize-awq";
const std::string kModel = quantd::test_data::Path("models/tiny-qwen2-wp/model");

struct Result {
  int exit_code = -1;
  std::string out;
};

// Runs `quantize-awq tokenize ARGS` with `input` on stdin. The input file is this process's own:
// ctest runs the cases of this file as parallel processes.
Result Tokenize(const std::string& args, const std::string& input) {
  static const quantd::engine::testing::IoTempDir dir;
  const std::string in_path = dir.Sub("tokenize_in.jsonl");
  std::ofstream(in_path) << input;
  const std::string cmd =
      "env -u AWQ_MODEL_DIR " + kBinary + " tokenize " + args + " < " + in_path + " 2>/dev/null";
  Result r;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) r.out.append(buf, n);
  int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

TEST(QuantizeAwqTokenizeTest, IdsMatchHuggingFaceGoldens) {
  // The first golden texts of tiny-qwen2-wp, as HF tokenizers encoded them.
  std::ifstream golden(std::string(QUANTD_SOURCE_DIR) +
                       "/tests/golden/tokenizer/tiny-qwen2-wp.golden.jsonl");
  std::string line;
  std::getline(golden, line);  // Header line.
  std::string input, expected;
  int rows = 0;
  while (rows < 20 && std::getline(golden, line)) {
    nlohmann::json g = nlohmann::json::parse(line);
    const std::string text = g["decoded"].get<std::string>();
    // Calibration strips texts; keep the ones stripping does not change.
    if (text.empty() || isspace(static_cast<unsigned char>(text.front())) ||
        isspace(static_cast<unsigned char>(text.back()))) {
      continue;
    }
    input += nlohmann::json({{"text", text}}).dump() + "\n";
    expected += g["ids"].dump() + "\n";
    ++rows;
  }
  ASSERT_GT(rows, 5);
  Result r = Tokenize("--model_dir " + kModel, input);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, expected);
}

TEST(QuantizeAwqTokenizeTest, RendersWithTheModelsOwnChatTemplate) {
  const std::string input = "{\"text\": \"  Who is Pierre?  \"}\n";
  Result with_system =
      Tokenize("--model_dir " + kModel + " --chat --render --system_prompt 'Be brief.'", input);
  EXPECT_EQ(with_system.exit_code, 0);
  EXPECT_EQ(with_system.out,
            nlohmann::json("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWho is "
                           "Pierre?<|im_end|>\n<|im_start|>assistant\n")
                    .dump() +
                "\n");
  // No system message: the Qwen2.5 template inserts its own default one (the ChatML fallback
  // would not), which proves the model's template rendered.
  Result no_system =
      Tokenize("--model_dir " + kModel + " --chat --render --system_prompt ''", input);
  EXPECT_EQ(no_system.exit_code, 0);
  EXPECT_NE(no_system.out.find("You are Qwen, created by Alibaba Cloud."), std::string::npos)
      << no_system.out;
}

TEST(QuantizeAwqTokenizeTest, ChatIdsAreTheStrippedRenderingEncoded) {
  const std::string input = "{\"text\": \"Who is Pierre?\"}\n";
  Result rendered = Tokenize("--model_dir " + kModel + " --chat --render", input);
  Result ids = Tokenize("--model_dir " + kModel + " --chat", input);
  ASSERT_EQ(rendered.exit_code, 0);
  ASSERT_EQ(ids.exit_code, 0);
  std::string text = nlohmann::json::parse(rendered.out).get<std::string>();
  ASSERT_EQ(text.back(), '\n');  // add_generation_prompt ends in "assistant\n" ...
  text.pop_back();               // ... which calibration strips before encoding.
  Result plain = Tokenize("--model_dir " + kModel, nlohmann::json({{"text", text}}).dump() + "\n");
  EXPECT_EQ(ids.out, plain.out);
  // The seed's system prompt is the default.
  EXPECT_NE(text.find("ROUGE-L"), std::string::npos);
}

TEST(QuantizeAwqTokenizeTest, BadRowsAreNullAndFailTheRun) {
  Result r = Tokenize("--model_dir " + kModel, "{\"text\": \"ok\"}\nnot json\n{\"no_text\": 1}\n");
  EXPECT_EQ(r.exit_code, 1);
  std::istringstream lines(r.out);
  std::string first, second, third;
  std::getline(lines, first);
  std::getline(lines, second);
  std::getline(lines, third);
  EXPECT_TRUE(nlohmann::json::parse(first).is_array());
  EXPECT_EQ(second, "null");
  EXPECT_EQ(third, "null");
}

TEST(QuantizeAwqTokenizeTest, UsageErrorsExitTwo) {
  EXPECT_EQ(Tokenize("", "").exit_code, 2);  // No --model_dir (and no AWQ_MODEL_DIR).
  EXPECT_EQ(Tokenize("--model_dir " + kModel + " --bogus", "").exit_code, 2);
  EXPECT_EQ(Tokenize("--model_dir /nonexistent/dir", "{\"text\": \"x\"}\n").exit_code, 1);
}

}  // namespace
