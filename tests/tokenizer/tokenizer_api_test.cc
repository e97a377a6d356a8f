// The Tokenizer interface beyond ids: special tokens, lookups, the tokenizer.model options read
// from tokenizer_config.json, and concurrent use.
#include <filesystem>
#include <fstream>
#include <thread>

#include "gtest/gtest.h"
#include "quantd/tokenizer/tokenizer.h"
#include "testing/golden.h"
#include "tests/testing/test_data.h"

namespace quantd::tokenizer {
namespace {

std::unique_ptr<Tokenizer> Load(const std::string& dir) {
  auto loaded = Tokenizer::FromModelDir(dir);
  EXPECT_TRUE(loaded.ok()) << loaded.status();
  return loaded.ok() ? std::move(*loaded) : nullptr;
}

std::string Assets() { return test_data::Dir(); }

TEST(TokenizerApiTest, Qwen25SlowFilesSpecialTokensAndLookups) {
  auto tok = Load(Assets() + "/tokenizers/qwen2.5");
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->eos_token(), "<|im_end|>");
  EXPECT_EQ(tok->bos_token(), std::nullopt);
  EXPECT_EQ(tok->TokenToId("<|im_start|>"), 151644);
  EXPECT_EQ(tok->TokenToId("<tool_call>"), 151657);
  EXPECT_EQ(tok->TokenToId("Hello"), 9707);
  EXPECT_EQ(tok->TokenToId("no such token"), std::nullopt);
  EXPECT_EQ(tok->vocab_size(), 151665);
  // Qwen adds no special tokens of its own.
  EXPECT_EQ(*tok->Encode("Hello", true), *tok->Encode("Hello", false));
}

TEST(TokenizerApiTest, TinyQwenTokenizerJson) {
  auto tok = Load(Assets() + "/models/tiny-qwen2-wp/model");
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->eos_token(), "<|im_end|>");
  EXPECT_EQ(tok->TokenToId("<|endoftext|>"), 0);
  EXPECT_EQ(tok->vocab_size(), 4096);
}

TEST(TokenizerApiTest, LlamaTokenizerModelAddsBos) {
  auto tok = Load(Assets() + "/tokenizers/llama2-spm");
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->bos_token(), "<s>");
  EXPECT_EQ(tok->eos_token(), "</s>");
  EXPECT_EQ(tok->vocab_size(), 32000);
  const auto ids = *tok->Encode("Hello world", true);
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(std::vector<int32_t>(ids.begin() + 1, ids.end()), *tok->Encode("Hello world", false));
  EXPECT_EQ(*tok->Decode(ids, /*skip_special_tokens=*/true), "Hello world");
}

// With tokenizer_config.json saying legacy: false, add_eos_token: true, tokenizer.model gets the
// Metaspace(prepend_scheme "first") layout: reference rows are those of the "metaspace-first"
// variant (variants.json), plus the EOS at the end.
TEST(TokenizerApiTest, LlamaTokenizerModelFollowsTokenizerConfig) {
  const auto dir = std::filesystem::path(QUANTD_BINARY_DIR) / "tokenizer_api" / "llama2-nonlegacy";
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(Assets() + "/tokenizers/llama2-spm/tokenizer.model",
                             dir / "tokenizer.model",
                             std::filesystem::copy_options::overwrite_existing);
  std::ofstream(dir / "tokenizer_config.json") << R"({"legacy": false, "add_eos_token": true})";
  auto tok = Load(dir.string());
  ASSERT_NE(tok, nullptr);
  const auto goldens = testing::LoadVariantGoldens();
  const auto rows = goldens.find("metaspace-first");
  ASSERT_NE(rows, goldens.end());
  int failures = 0;
  for (const auto& row : rows->second) {
    std::vector<int32_t> want = row.ids;
    want.push_back(2);
    const auto got = *tok->Encode(row.text, true);
    if (got != want && ++failures <= 5) {
      ADD_FAILURE() << row.name << ": " << testing::FirstDifference(got, want);
    }
  }
  EXPECT_EQ(failures, 0);
}

TEST(TokenizerApiTest, ConcurrentEncodesAgree) {
  auto tok = Load(Assets() + "/models/tiny-qwen2-wp/model");
  ASSERT_NE(tok, nullptr);
  const std::string text =
      testing::ReadFileOrDie(Assets() + "/corpora/tinyshakespeare.head.txt").substr(0, 200000);
  const auto want = *tok->Encode(text, false);
  std::vector<std::thread> threads;
  std::vector<int> same(4, 0);  // not vector<bool>: threads write neighbouring elements
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] { same[t] = *tok->Encode(text, false) == want ? 1 : 0; });
  }
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(same[t], 1) << "thread " << t;
}

}  // namespace
}  // namespace quantd::tokenizer
