// Broken or unsupported tokenizer files give an error that names the file and what is wrong, and
// never crash.
#include <filesystem>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "quantd/tokenizer/tokenizer.h"
#include "testing/golden.h"
#include "tests/testing/test_data.h"

namespace quantd::tokenizer {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

class MalformedFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(QUANTD_BINARY_DIR) / "tokenizer_malformed" /
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void Write(const std::string& name, const std::string& content) {
    std::ofstream(dir_ / name, std::ios::binary) << content;
  }
  // The error FromModelDir gives; fails the test when loading succeeds.
  std::string LoadError() {
    auto loaded = Tokenizer::FromModelDir(dir_.string());
    EXPECT_FALSE(loaded.ok()) << "loading " << dir_ << " should fail";
    return loaded.ok() ? "" : std::string(loaded.status().message());
  }
  static std::string TinyTokenizerJson(const std::string& model, const std::string& extra = "") {
    return R"({"version": "1.0", "added_tokens": [], )" + extra + R"("model": )" + model + "}";
  }
  static constexpr const char* kTinyModel =
      R"({"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]})";

  std::filesystem::path dir_;
};

TEST_F(MalformedFilesTest, EmptyDirectorySaysWhichFilesWereExpected) {
  EXPECT_THAT(LoadError(), AllOf(HasSubstr("no tokenizer found"), HasSubstr("tokenizer.json"),
                                 HasSubstr("merges.txt"), HasSubstr("tokenizer.model")));
}

TEST_F(MalformedFilesTest, TokenizerJsonThatIsNotJson) {
  Write("tokenizer.json", "{\"model\": [1, 2");
  EXPECT_THAT(LoadError(), AllOf(HasSubstr("tokenizer.json"), HasSubstr("not valid JSON")));
}

TEST_F(MalformedFilesTest, TokenizerJsonWithoutModel) {
  Write("tokenizer.json", R"({"version": "1.0"})");
  EXPECT_THAT(LoadError(), AllOf(HasSubstr("tokenizer.json"), HasSubstr("\"model\"")));
}

TEST_F(MalformedFilesTest, UnsupportedModelType) {
  Write("tokenizer.json", TinyTokenizerJson(R"({"type": "Unigram", "vocab": []})"));
  EXPECT_THAT(LoadError(), AllOf(HasSubstr("tokenizer.json"), HasSubstr("Unigram")));
}

TEST_F(MalformedFilesTest, MergeOfUnknownToken) {
  Write("tokenizer.json",
        TinyTokenizerJson(R"({"type": "BPE", "vocab": {"a": 0, "ab": 1}, "merges": ["a b"]})"));
  EXPECT_THAT(LoadError(), AllOf(HasSubstr("tokenizer.json"), HasSubstr("merge 0 \"a b\""),
                                 HasSubstr("\"b\" is not in the vocabulary")));
}

TEST_F(MalformedFilesTest, MergeThatIsNotAPair) {
  Write("tokenizer.json",
        TinyTokenizerJson(R"({"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a b c"]})"));
  EXPECT_THAT(LoadError(), AllOf(HasSubstr("tokenizer.json"), HasSubstr("merges[0]")));
}

TEST_F(MalformedFilesTest, VocabIdThatIsNotAnInteger) {
  Write("tokenizer.json",
        TinyTokenizerJson(R"({"type": "BPE", "vocab": {"a": "zero"}, "merges": []})"));
  EXPECT_THAT(LoadError(),
              AllOf(HasSubstr("tokenizer.json"), HasSubstr("\"a\""), HasSubstr("integer id")));
}

TEST_F(MalformedFilesTest, UnsupportedNormalizer) {
  Write("tokenizer.json",
        TinyTokenizerJson(kTinyModel, R"("normalizer": {"type": "Precompiled"}, )"));
  EXPECT_THAT(LoadError(),
              AllOf(HasSubstr("tokenizer.json: normalizer"), HasSubstr("Precompiled")));
}

TEST_F(MalformedFilesTest, BadSplitRegex) {
  Write("tokenizer.json",
        TinyTokenizerJson(kTinyModel,
                          R"("pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(a"},
                                          "behavior": "Isolated", "invert": false}, )"));
  EXPECT_THAT(LoadError(),
              AllOf(HasSubstr("tokenizer.json: pre_tokenizer"), HasSubstr("bad regex")));
}

TEST_F(MalformedFilesTest, UnknownSplitBehavior) {
  Write("tokenizer.json",
        TinyTokenizerJson(kTinyModel,
                          R"("pre_tokenizer": {"type": "Split", "pattern": {"String": " "},
                                          "behavior": "Sideways", "invert": false}, )"));
  EXPECT_THAT(LoadError(), AllOf(HasSubstr("pre_tokenizer"), HasSubstr("Sideways")));
}

TEST_F(MalformedFilesTest, AddedTokenWithoutContent) {
  Write("tokenizer.json", R"({"added_tokens": [{"id": 5, "special": true}], "model": )" +
                              std::string(kTinyModel) + "}");
  EXPECT_THAT(LoadError(), AllOf(HasSubstr("added_tokens[0]"), HasSubstr("\"content\"")));
}

TEST_F(MalformedFilesTest, FieldOfWrongType) {
  Write("tokenizer.json",
        TinyTokenizerJson(
            kTinyModel, R"("pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": "yes"}, )"));
  EXPECT_THAT(LoadError(), AllOf(HasSubstr("add_prefix_space"), HasSubstr("true or false")));
}

TEST_F(MalformedFilesTest, MergesTxtWithABadLine) {
  Write("vocab.json", R"({"a": 0, "b": 1, "ab": 2})");
  Write("merges.txt", "#version: 0.2\na b\nab\n");
  EXPECT_THAT(LoadError(),
              AllOf(HasSubstr("merges.txt"), HasSubstr("line 3"), HasSubstr("\"ab\"")));
}

TEST_F(MalformedFilesTest, VocabJsonThatIsNotAnObject) {
  Write("vocab.json", "[\"a\", \"b\"]");
  Write("merges.txt", "a b\n");
  EXPECT_THAT(LoadError(), AllOf(HasSubstr("vocab.json"), HasSubstr("token -> id")));
}

TEST_F(MalformedFilesTest, MergesTxtNamingAnUnknownToken) {
  Write("vocab.json", R"({"a": 0, "b": 1})");
  Write("merges.txt", "a b\n");
  EXPECT_THAT(LoadError(),
              AllOf(HasSubstr("merges.txt"), HasSubstr("\"ab\" is not in the vocabulary")));
}

TEST_F(MalformedFilesTest, UnsupportedSlowTokenizerClass) {
  Write("vocab.json", R"({"a": 0})");
  Write("merges.txt", "");
  Write("tokenizer_config.json", R"({"tokenizer_class": "BertTokenizer"})");
  EXPECT_THAT(LoadError(), AllOf(HasSubstr("tokenizer_config.json"), HasSubstr("BertTokenizer")));
}

TEST_F(MalformedFilesTest, TokenizerModelOfGarbage) {
  Write("tokenizer.model", std::string("\xff\xff\xff\xff\x0f garbage", 13));
  EXPECT_THAT(LoadError(),
              AllOf(HasSubstr("tokenizer.model"), HasSubstr("not a SentencePiece model")));
}

TEST_F(MalformedFilesTest, TruncatedTokenizerModel) {
  const std::string real =
      testing::ReadFileOrDie(test_data::Path("tokenizers/llama2-spm/tokenizer.model"));
  for (size_t size : {size_t{1}, size_t{100}, real.size() / 2, real.size() - 1}) {
    Write("tokenizer.model", real.substr(0, size));
    EXPECT_THAT(LoadError(), HasSubstr("tokenizer.model")) << "truncated to " << size << " bytes";
  }
}

}  // namespace
}  // namespace quantd::tokenizer
