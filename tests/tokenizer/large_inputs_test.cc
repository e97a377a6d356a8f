// Pathological inputs (long runs that stress the split regex and the merge loop, random bytes)
// encode without crashing, and as the pieces they are made of.
#include <random>
#include <string>

#include "gtest/gtest.h"
#include "quantd/tokenizer/tokenizer.h"
#include "testing/golden.h"
#include "tests/testing/test_data.h"

namespace quantd::tokenizer {
namespace {

class LargeInputsTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    auto loaded = Tokenizer::FromModelDir(test_data::Path(GetParam()));
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    tok_ = std::move(*loaded);
  }
  std::vector<int32_t> Ids(const std::string& text) {
    auto ids = tok_->Encode(text, false);
    EXPECT_TRUE(ids.ok());
    return ids.ok() ? *ids : std::vector<int32_t>();
  }
  std::unique_ptr<Tokenizer> tok_;
};

TEST_P(LargeInputsTest, LongRunsRoundTrip) {
  for (const std::string& text :
       {std::string(2'000'000, ' '), std::string(1'000'000, 'a'), std::string(500'000, '\n'),
        std::string(300'000, '7'), std::string(200'000, '!') + std::string(200'000, '\t')}) {
    const auto ids = Ids(text);
    ASSERT_FALSE(ids.empty());
    const std::string decoded = *tok_->Decode(ids, false);
    // Llama's decoder strips the leading space its normalizer added; byte-level decodes exactly.
    EXPECT_TRUE(decoded == text || decoded == text.substr(1)) << "length " << decoded.size();
  }
}

// Invalid UTF-8 is encoded as its replacement text, which is also what decoding gives back.
TEST_P(LargeInputsTest, RandomBytesEncodeAsTheirReplacementText) {
  std::mt19937 rng(7);
  std::string bytes(300'000, '\0');
  for (char& c : bytes) c = static_cast<char>(rng() & 0xFF);
  const auto ids = Ids(bytes);
  ASSERT_FALSE(ids.empty());
  const std::string decoded = *tok_->Decode(ids, false);
  EXPECT_NE(decoded.find("\xEF\xBF\xBD"), std::string::npos);
  EXPECT_EQ(Ids(decoded), ids);
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, LargeInputsTest,
                         ::testing::Values("models/tiny-qwen2-wp/model", "tokenizers/llama2-spm"),
                         [](const auto& info) {
                           return std::string(info.index == 0 ? "tiny_qwen2_wp" : "llama2_spm");
                         });

}  // namespace
}  // namespace quantd::tokenizer
