// Token ids, and decodings, identical to Hugging Face's on the golden corpus (samples of every
// corpus file, hostile strings, invalid UTF-8) and on the whole corpus files.
#include "testing/golden.h"

#include <string>

#include "gtest/gtest.h"
#include "quantd/tokenizer/tokenizer.h"
#include "tests/testing/test_data.h"

namespace quantd::tokenizer {
namespace {

using testing::Golden;
using testing::LoadGolden;

struct Case {
  const char* golden;     // <golden>.golden.jsonl
  const char* model_dir;  // under the test data, or under tests/golden/tokenizer when in_repo
  bool in_repo = false;
};

class GoldenTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    const std::string base = GetParam().in_repo ? testing::GoldenDir() : test_data::Dir();
    auto loaded = Tokenizer::FromModelDir(base + "/" + GetParam().model_dir);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    tokenizer_ = std::move(*loaded);
    golden_ = LoadGolden(GetParam().golden);
  }
  std::unique_ptr<Tokenizer> tokenizer_;
  Golden golden_;
};

TEST_P(GoldenTest, EncodeAndDecodeMatchReferenceOnEveryCorpusText) {
  EXPECT_EQ(testing::CompareWithGolden(*tokenizer_, golden_.rows), 0)
      << "differences on " << golden_.rows.size() << " texts; reference: " << golden_.reference;
}

TEST_P(GoldenTest, WholeCorpusFilesMatchReference) {
  ASSERT_FALSE(golden_.files.empty());
  for (const auto& [path, want] : golden_.files) {
    const std::string text = testing::ReadFileOrDie(test_data::Path(path));
    auto ids = tokenizer_->Encode(text, /*add_special_tokens=*/false);
    ASSERT_TRUE(ids.ok()) << path;
    EXPECT_EQ(static_cast<int64_t>(ids->size()), want.count) << path;
    EXPECT_EQ(testing::Fnv1a64(*ids), want.fnv1a64) << path;
  }
}

INSTANTIATE_TEST_SUITE_P(
    HuggingFace, GoldenTest,
    ::testing::Values(Case{"qwen2", "tokenizers/qwen2"}, Case{"qwen2.5-slow", "tokenizers/qwen2.5"},
                      Case{"tiny-qwen2-wp", "models/tiny-qwen2-wp/model"},
                      // Llama 2: the SentencePiece file itself, and as HF's tokenizer.json.
                      Case{"llama2-hf-json", "tokenizers/llama2-spm"},
                      Case{"llama2-hf-json", "llama2-hf", /*in_repo=*/true}),
    [](const ::testing::TestParamInfo<Case>& info) {
      std::string name = std::string(info.param.golden) + (info.param.in_repo ? "_json" : "");
      for (char& c : name) {
        if (!isalnum(static_cast<unsigned char>(c))) c = '_';
      }
      return name;
    });

}  // namespace
}  // namespace quantd::tokenizer
