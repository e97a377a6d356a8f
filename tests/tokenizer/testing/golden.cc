#include "golden.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "quantd/tokenizer/tokenizer.h"

namespace quantd::tokenizer::testing {
namespace {

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "%s\n", message.c_str());
  std::abort();
}

std::vector<std::string> Lines(const std::string& path) {
  std::istringstream in(ReadFileOrDie(path));
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

nlohmann::json ParseOrDie(const std::string& line, const std::string& path) {
  nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded()) Die(absl::StrCat(path, ": bad JSON line"));
  return j;
}

GoldenRow ParseRow(const nlohmann::json& g, std::string text) {
  GoldenRow row;
  row.name = g["name"].get<std::string>();
  row.text = std::move(text);
  row.ids = g["ids"].get<std::vector<int32_t>>();
  row.ids_no_special =
      g.contains("ids_no_special") ? g["ids_no_special"].get<std::vector<int32_t>>() : row.ids;
  row.decoded = g["decoded"].get<std::string>();
  row.decoded_skip =
      g.contains("decoded_skip") ? g["decoded_skip"].get<std::string>() : row.decoded;
  return row;
}

std::map<std::string, std::string> LoadCorpusTexts(const std::string& path) {
  std::map<std::string, std::string> texts;
  for (const std::string& line : Lines(path)) {
    const nlohmann::json c = ParseOrDie(line, path);
    std::string text;
    if (!absl::Base64Unescape(c["b64"].get<std::string>(), &text)) Die("bad base64 in corpus");
    texts[c["name"].get<std::string>()] = std::move(text);
  }
  return texts;
}

}  // namespace

std::map<std::string, std::vector<GoldenRow>> LoadVariantGoldens() {
  const std::string corpus_path = GoldenDir() + "/corpus.jsonl";
  const std::string golden_path = GoldenDir() + "/variants.golden.jsonl";
  const std::map<std::string, std::string> texts = LoadCorpusTexts(corpus_path);
  std::map<std::string, std::vector<GoldenRow>> out;
  for (const std::string& line : Lines(golden_path)) {
    const nlohmann::json g = ParseOrDie(line, golden_path);
    const auto text = texts.find(g["name"].get<std::string>());
    if (text == texts.end()) Die(absl::StrCat(golden_path, ": text not in the corpus"));
    out[g["variant"].get<std::string>()].push_back(ParseRow(g, text->second));
  }
  return out;
}

std::string GoldenDir() { return std::string(QUANTD_SOURCE_DIR) + "/tests/golden/tokenizer"; }

std::string ReadFileOrDie(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Die(absl::StrCat("cannot read ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

Golden LoadGolden(const std::string& name) {
  const std::string corpus_path = GoldenDir() + "/corpus.jsonl";
  const std::string golden_path = GoldenDir() + "/" + name + ".golden.jsonl";
  const std::vector<std::string> corpus = Lines(corpus_path);
  const std::vector<std::string> golden = Lines(golden_path);
  if (golden.size() != corpus.size() + 1) {
    Die(absl::StrCat(golden_path, ": ", golden.size() - 1, " rows for ", corpus.size(), " texts"));
  }
  Golden out;
  const nlohmann::json header = ParseOrDie(golden[0], golden_path);
  out.reference = header.value("reference", "");
  for (const auto& [key, value] : header["files"].items()) {
    out.files[key] = {value["count"].get<int64_t>(), value["fnv1a64"].get<std::string>()};
  }
  for (size_t i = 0; i < corpus.size(); ++i) {
    const nlohmann::json c = ParseOrDie(corpus[i], corpus_path);
    const nlohmann::json g = ParseOrDie(golden[i + 1], golden_path);
    if (g["name"] != c["name"]) Die(absl::StrCat(golden_path, ": row order differs"));
    std::string text;
    if (!absl::Base64Unescape(c["b64"].get<std::string>(), &text)) Die("bad base64 in corpus");
    out.rows.push_back(ParseRow(g, std::move(text)));
  }
  return out;
}

std::string Fnv1a64(const std::vector<int32_t>& ids) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (int32_t id : ids) {
    const auto u = static_cast<uint32_t>(id);
    for (int k = 0; k < 4; ++k) {
      h ^= (u >> (8 * k)) & 0xFF;
      h *= 0x100000001b3ULL;
    }
  }
  return absl::StrFormat("%016x", h);
}

int CompareWithGolden(const Tokenizer& tokenizer, const std::vector<GoldenRow>& rows) {
  int failures = 0;
  const auto fail = [&](const GoldenRow& row, const std::string& what) {
    if (++failures <= 10) ADD_FAILURE() << row.name << ": " << what;
  };
  for (const GoldenRow& row : rows) {
    auto with = tokenizer.Encode(row.text, /*add_special_tokens=*/true);
    auto without = tokenizer.Encode(row.text, /*add_special_tokens=*/false);
    auto decoded = tokenizer.Decode(row.ids, /*skip_special_tokens=*/false);
    auto skipped = tokenizer.Decode(row.ids, /*skip_special_tokens=*/true);
    if (!with.ok() || !without.ok() || !decoded.ok() || !skipped.ok()) {
      fail(row, "an Encode or Decode call failed");
      continue;
    }
    if (*with != row.ids) fail(row, "add_special_tokens: " + FirstDifference(*with, row.ids));
    if (*without != row.ids_no_special) {
      fail(row, FirstDifference(*without, row.ids_no_special));
    }
    if (*decoded != row.decoded)
      fail(row, "decoded \"" + *decoded + "\" want \"" + row.decoded + "\"");
    if (*skipped != row.decoded_skip) {
      fail(row, "skip_special decoded \"" + *skipped + "\" want \"" + row.decoded_skip + "\"");
    }
  }
  return failures;
}

std::string FirstDifference(const std::vector<int32_t>& got, const std::vector<int32_t>& want) {
  size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  const auto window = [&](const std::vector<int32_t>& v) {
    std::string s;
    for (size_t k = i; k < v.size() && k < i + 6; ++k) absl::StrAppend(&s, v[k], " ");
    return s;
  };
  return absl::StrCat("lengths ", got.size(), " vs ", want.size(), "; first difference at ", i,
                      ": got [", window(got), "] want [", window(want), "]");
}

}  // namespace quantd::tokenizer::testing
