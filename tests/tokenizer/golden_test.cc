// Token ids, and decodings, identical to Hugging Face's on the golden corpus (samples of every
// corpus file, hostile strings, invalid UTF-8) and on the whole corpus files.
#include "testing/golden.h"

#include <string>

#include "gtest/gtest.h"
#include "quantd/tokenizer/tokenizer.h"

namespace quantd::tokenizer {
namespace {

using testing::Golden;
using testing::LoadGolden;

struct Case {
  const char* golden;     // <golden>.golden.jsonl
  const char* model_dir;  // under shared/assets
};

class GoldenTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    auto loaded = Tokenizer::FromModelDir(testing::SharedDir() + "/assets/" + GetParam().model_dir);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    tokenizer_ = std::move(*loaded);
    golden_ = LoadGolden(GetParam().golden);
  }
  std::unique_ptr<Tokenizer> tokenizer_;
  Golden golden_;
};

TEST_P(GoldenTest, EncodeMatchesReferenceOnEveryCorpusText) {
  int failures = 0;
  for (const auto& row : golden_.rows) {
    auto with = tokenizer_->Encode(row.text, /*add_special_tokens=*/true);
    auto without = tokenizer_->Encode(row.text, /*add_special_tokens=*/false);
    ASSERT_TRUE(with.ok() && without.ok()) << row.name;
    if (*with != row.ids && ++failures <= 10) {
      ADD_FAILURE() << row.name
                    << " (add_special_tokens): " << testing::FirstDifference(*with, row.ids);
    }
    if (*without != row.ids_no_special && ++failures <= 10) {
      ADD_FAILURE() << row.name << ": " << testing::FirstDifference(*without, row.ids_no_special);
    }
  }
  EXPECT_EQ(failures, 0) << "of " << golden_.rows.size()
                         << " texts; reference: " << golden_.reference;
}

TEST_P(GoldenTest, DecodeMatchesReference) {
  int failures = 0;
  for (const auto& row : golden_.rows) {
    auto decoded = tokenizer_->Decode(row.ids, /*skip_special_tokens=*/false);
    auto skipped = tokenizer_->Decode(row.ids, /*skip_special_tokens=*/true);
    ASSERT_TRUE(decoded.ok() && skipped.ok()) << row.name;
    if (*decoded != row.decoded && ++failures <= 10) {
      ADD_FAILURE() << row.name << ": decoded \"" << *decoded << "\" want \"" << row.decoded
                    << "\"";
    }
    if (*skipped != row.decoded_skip && ++failures <= 10) {
      ADD_FAILURE() << row.name << ": skip_special decoded \"" << *skipped << "\" want \""
                    << row.decoded_skip << "\"";
    }
  }
  EXPECT_EQ(failures, 0);
}

TEST_P(GoldenTest, WholeCorpusFilesMatchReference) {
  ASSERT_FALSE(golden_.files.empty());
  for (const auto& [path, want] : golden_.files) {
    const std::string text = testing::ReadFileOrDie(testing::SharedDir() + "/assets/" + path);
    auto ids = tokenizer_->Encode(text, /*add_special_tokens=*/false);
    ASSERT_TRUE(ids.ok()) << path;
    EXPECT_EQ(static_cast<int64_t>(ids->size()), want.count) << path;
    EXPECT_EQ(testing::Fnv1a64(*ids), want.fnv1a64) << path;
  }
}

INSTANTIATE_TEST_SUITE_P(HuggingFace, GoldenTest,
                         ::testing::Values(Case{"qwen2", "tokenizers/qwen2"},
                                           Case{"qwen2.5-slow", "tokenizers/qwen2.5"},
                                           Case{"tiny-qwen2-wp", "models/tiny-qwen2-wp/model"}),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           std::string name = info.param.golden;
                           for (char& c : name) {
                             if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace quantd::tokenizer
