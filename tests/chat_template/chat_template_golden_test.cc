// Golden test: every rendering must be byte-identical to Python Jinja2 configured as transformers
// configures it (tests/golden/chat_template/generate.py wrote expected.json).
#include <cctype>
#include <ctime>
#include <ostream>
#include <string>
#include <vector>

#include "golden_test_support.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "quantd/chat_template/chat_template.h"

namespace quantd::chat_template {
namespace {

using testing::GoldenDir;
using testing::ReadTextFile;

struct GoldenCase {
  std::string name;
  std::string template_file;
  nlohmann::ordered_json context;
  std::string expected;
  std::string error;  // Non-empty when Jinja2 raised.
};

// Names the case in gtest output instead of dumping its bytes.
void PrintTo(const GoldenCase& c, std::ostream* os) { *os << c.name; }

std::vector<GoldenCase> LoadCases() {
  std::vector<GoldenCase> cases;
  nlohmann::ordered_json doc = nlohmann::ordered_json::parse(
      ReadTextFile(GoldenDir() + "/expected.json"), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.contains("cases")) return cases;
  for (const auto& c : doc["cases"]) {
    GoldenCase g;
    g.name = c["name"].get<std::string>();
    g.template_file = c["template"].get<std::string>();
    g.context = c["context"];
    if (c.contains("expected")) g.expected = c["expected"].get<std::string>();
    if (c.contains("error")) g.error = c["error"].get<std::string>();
    cases.push_back(std::move(g));
  }
  return cases;
}

// The generator renders strftime_now(fmt) as "STRFTIME_NOW(fmt)"; substitute today's date.
std::string SubstituteStrftime(std::string text) {
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

class ChatTemplateGoldenTest : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(ChatTemplateGoldenTest, MatchesJinja2) {
  const GoldenCase& c = GetParam();
  const std::string path = GoldenDir() + "/" + c.template_file;
  absl::StatusOr<ChatTemplate> tmpl = ChatTemplate::Parse(ReadTextFile(path), path);
  ASSERT_TRUE(tmpl.ok()) << tmpl.status();
  absl::StatusOr<std::string> out = tmpl->RenderOrdered(c.context);
  if (!c.error.empty()) {
    ASSERT_FALSE(out.ok()) << "Jinja2 raised \"" << c.error << "\" but we rendered:\n" << *out;
    EXPECT_NE(std::string(out.status().message()).find(c.error), std::string::npos) << out.status();
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
    return;
  }
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, SubstituteStrftime(c.expected));
}

std::string CaseName(const ::testing::TestParamInfo<GoldenCase>& info) {
  std::string name;
  for (char ch : info.param.name) {
    name.push_back(std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_');
  }
  return name + "_" + std::to_string(info.index);
}

INSTANTIATE_TEST_SUITE_P(Jinja2, ChatTemplateGoldenTest, ::testing::ValuesIn(LoadCases()),
                         CaseName);

TEST(ChatTemplateGoldenFileTest, CoversEveryTemplateFamily) {
  std::vector<GoldenCase> cases = LoadCases();
  ASSERT_GE(cases.size(), 150u) << "expected.json missing or truncated";
  for (const char* family :
       {"qwen2.5/", "qwen3/", "llama3.1/", "llama3.2/", "mistral-v0.1/", "mistral-v0.3/"}) {
    int rendered = 0;
    for (const GoldenCase& c : cases) {
      if (c.name.rfind(family, 0) == 0 && c.error.empty()) ++rendered;
    }
    EXPECT_GE(rendered, 4) << family;
  }
}

}  // namespace
}  // namespace quantd::chat_template
