// Reading the tokenizer golden files of tests/golden/tokenizer (see gen_ids.mjs there).
#ifndef QUANTD_TESTS_TOKENIZER_TESTING_GOLDEN_H_
#define QUANTD_TESTS_TOKENIZER_TESTING_GOLDEN_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace quantd::tokenizer::testing {

std::string GoldenDir();
std::string ReadFileOrDie(const std::string& path);

struct GoldenRow {
  std::string name;
  std::string text;  // raw bytes, possibly invalid UTF-8
  std::vector<int32_t> ids;
  std::vector<int32_t> ids_no_special;
  std::string decoded;
  std::string decoded_skip;
};

struct WholeFile {
  int64_t count;
  std::string fnv1a64;
};

struct Golden {
  std::string reference;
  std::map<std::string, WholeFile> files;  // path under the test data -> expected
  std::vector<GoldenRow> rows;
};

// Joins corpus.jsonl with <name>.golden.jsonl.
Golden LoadGolden(const std::string& name);

// variants.golden.jsonl: rows per variant name (see variants.json), texts joined from the corpus.
std::map<std::string, std::vector<GoldenRow>> LoadVariantGoldens();

// FNV-1a 64 over the ids as little-endian uint32, in hex (as the generator computes it).
std::string Fnv1a64(const std::vector<int32_t>& ids);

}  // namespace quantd::tokenizer::testing
namespace quantd::tokenizer {
class Tokenizer;
}
namespace quantd::tokenizer::testing {

// Encodes and decodes every row with `tokenizer`, adding a test failure (at most 10) for each
// difference from the reference; returns the number of differences.
int CompareWithGolden(const Tokenizer& tokenizer, const std::vector<GoldenRow>& rows);

// A short description of where two id sequences first differ.
std::string FirstDifference(const std::vector<int32_t>& got, const std::vector<int32_t>& want);

}  // namespace quantd::tokenizer::testing

#endif  // QUANTD_TESTS_TOKENIZER_TESTING_GOLDEN_H_
