// Each pre-tokenizer behaviour (Split with every behavior and invert, ByteLevel with prefix space
// and regex, Metaspace prepend schemes and split, Digits, Punctuation, Whitespace), normalizer and
// added-token flag (lstrip, rstrip, single_word, normalized) against Hugging Face's tokenizers:
// variants.json patches a base tokenizer.json; gen_ids.mjs wrote the reference ids.
#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "quantd/tokenizer/tokenizer.h"
#include "testing/golden.h"
#include "tests/testing/test_data.h"

namespace quantd::tokenizer {
namespace {

using nlohmann::json;

std::string BasePath(const std::string& base) {
  if (base == "tiny") return test_data::Path("models/tiny-qwen2-wp/model/tokenizer.json");
  return testing::GoldenDir() + "/llama2-hf/tokenizer.json";
}

// Writes the variant's tokenizer.json into a directory of its own and returns the directory.
std::string MakeVariant(const json& variant) {
  json doc = json::parse(testing::ReadFileOrDie(BasePath(variant["base"].get<std::string>())));
  if (variant.contains("patch")) {
    for (const auto& [key, value] : variant["patch"].items()) doc[key] = value;
  }
  if (variant.contains("add_tokens")) {
    for (const json& token : variant["add_tokens"]) doc["added_tokens"].push_back(token);
  }
  const auto dir = std::filesystem::path(QUANTD_BINARY_DIR) / "tokenizer_variants" /
                   variant["name"].get<std::string>();
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "tokenizer.json") << doc.dump();
  return dir.string();
}

TEST(VariantsTest, EveryVariantMatchesReference) {
  const json variants =
      json::parse(testing::ReadFileOrDie(testing::GoldenDir() + "/variants.json"));
  const auto goldens = testing::LoadVariantGoldens();
  ASSERT_EQ(goldens.size(), variants.size());
  for (const json& variant : variants) {
    const std::string name = variant["name"].get<std::string>();
    SCOPED_TRACE(name);
    auto tokenizer = Tokenizer::FromModelDir(MakeVariant(variant));
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    const auto rows = goldens.find(name);
    ASSERT_NE(rows, goldens.end());
    EXPECT_EQ(testing::CompareWithGolden(**tokenizer, rows->second), 0)
        << "of " << rows->second.size() << " texts";
  }
}

}  // namespace
}  // namespace quantd::tokenizer
