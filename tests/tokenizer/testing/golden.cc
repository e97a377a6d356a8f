#include "golden.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"

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

}  // namespace

std::string SharedDir() { return QUANTD_SHARED_DIR; }
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
    GoldenRow row;
    row.name = c["name"].get<std::string>();
    if (g["name"].get<std::string>() != row.name)
      Die(absl::StrCat(golden_path, ": row order differs"));
    if (!absl::Base64Unescape(c["b64"].get<std::string>(), &row.text)) Die("bad base64 in corpus");
    row.ids = g["ids"].get<std::vector<int32_t>>();
    row.ids_no_special =
        g.contains("ids_no_special") ? g["ids_no_special"].get<std::vector<int32_t>>() : row.ids;
    row.decoded = g["decoded"].get<std::string>();
    row.decoded_skip =
        g.contains("decoded_skip") ? g["decoded_skip"].get<std::string>() : row.decoded;
    out.rows.push_back(std::move(row));
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
