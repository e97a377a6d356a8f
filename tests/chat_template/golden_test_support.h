// Helpers shared by the chat-template tests: reading the golden files that
// tests/golden/chat_template/generate.py writes with Python's Jinja2.
#ifndef QUANTD_TESTS_CHAT_TEMPLATE_GOLDEN_TEST_SUPPORT_H_
#define QUANTD_TESTS_CHAT_TEMPLATE_GOLDEN_TEST_SUPPORT_H_

#include <cctype>
#include <ctime>
#include <fstream>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace quantd::chat_template::testing {

inline std::string GoldenDir() {
  return std::string(QUANTD_SOURCE_DIR) + "/tests/golden/chat_template";
}

// Returns the file's bytes, or "" when it cannot be read (the caller asserts on content).
inline std::string ReadTextFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

struct GoldenCase {
  std::string name;
  std::string template_file;    // Relative to GoldenDir(); empty when the source is inline.
  std::string template_source;  // Inline template (features_expected.json).
  nlohmann::ordered_json context;
  std::string expected;
  std::string error;       // Non-empty when Jinja2 raised.
  std::string error_type;  // Python exception class, e.g. "TemplateError" for raise_exception.
};

// Names the case in gtest output instead of dumping its bytes.
inline void PrintTo(const GoldenCase& c, std::ostream* os) { *os << c.name; }

// Loads {"cases": [...]} from a golden file; empty when it is missing or malformed.
inline std::vector<GoldenCase> LoadGoldenCases(const std::string& file) {
  std::vector<GoldenCase> cases;
  nlohmann::ordered_json doc = nlohmann::ordered_json::parse(ReadTextFile(GoldenDir() + "/" + file),
                                                             nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.contains("cases")) return cases;
  for (const auto& c : doc["cases"]) {
    GoldenCase g;
    g.name = c.value("name", "");
    g.template_file = c.value("template", "");
    if (g.template_file.find(".jinja") == std::string::npos) {
      g.template_source = g.template_file;
      g.template_file.clear();
    }
    g.context = c["context"];
    g.expected = c.value("expected", "");
    g.error = c.value("error", "");
    g.error_type = c.value("error_type", "");
    cases.push_back(std::move(g));
  }
  return cases;
}

// The generator renders strftime_now(fmt) as "STRFTIME_NOW(fmt)"; substitute the current time.
inline std::string SubstituteStrftime(std::string text) {
  const std::string marker = "STRFTIME_NOW(";
  size_t pos;
  while ((pos = text.find(marker)) != std::string::npos) {
    size_t close = text.find(')', pos);
    std::string format = text.substr(pos + marker.size(), close - pos - marker.size());
    std::time_t now = std::time(nullptr);
    std::tm local{};
    localtime_r(&now, &local);
    char buf[128];
    size_t n = std::strftime(buf, sizeof(buf), format.c_str(), &local);
    text.replace(pos, close + 1 - pos, std::string(buf, n));
  }
  return text;
}

// A gtest parameter name built from the case name.
inline std::string CaseName(const ::testing::TestParamInfo<GoldenCase>& info) {
  std::string name;
  for (char ch : info.param.name) {
    name.push_back(std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_');
  }
  return name + "_" + std::to_string(info.index);
}

}  // namespace quantd::chat_template::testing

#endif  // QUANTD_TESTS_CHAT_TEMPLATE_GOLDEN_TEST_SUPPORT_H_
