// Golden test: real models' templates over many conversations must render byte-identically to
// Python Jinja2 configured as transformers configures it (see tests/golden/chat_template/).
#include <string>
#include <vector>

#include "golden_test_support.h"
#include "gtest/gtest.h"
#include "quantd/chat_template/chat_template.h"

namespace quantd::chat_template {
namespace {

using testing::GoldenCase;

class ChatTemplateGoldenTest : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(ChatTemplateGoldenTest, MatchesJinja2) {
  const GoldenCase& c = GetParam();
  const std::string path = testing::GoldenDir() + "/" + c.template_file;
  absl::StatusOr<ChatTemplate> tmpl = ChatTemplate::Parse(testing::ReadTextFile(path), path);
  ASSERT_TRUE(tmpl.ok()) << tmpl.status();
  absl::StatusOr<std::string> out = tmpl->RenderOrdered(c.context);
  if (!c.error.empty()) {
    ASSERT_FALSE(out.ok()) << "Jinja2 raised \"" << c.error << "\" but we rendered:\n" << *out;
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
    // raise_exception and undefined-value messages are the template's / Jinja2's own words;
    // Python's TypeError texts differ from ours.
    if (c.error_type == "TemplateError" || c.error_type == "UndefinedError") {
      EXPECT_NE(std::string(out.status().message()).find(c.error), std::string::npos)
          << out.status();
    }
    return;
  }
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, testing::SubstituteStrftime(c.expected));
}

INSTANTIATE_TEST_SUITE_P(Jinja2, ChatTemplateGoldenTest,
                         ::testing::ValuesIn(testing::LoadGoldenCases("expected.json")),
                         testing::CaseName);

TEST(ChatTemplateGoldenFileTest, CoversEveryTemplateFamily) {
  std::vector<GoldenCase> cases = testing::LoadGoldenCases("expected.json");
  ASSERT_GE(cases.size(), 150u) << "expected.json missing or truncated";
  for (const char* family :
       {"qwen2.5/", "qwen3/", "llama3.1/", "llama3.2/", "mistral-v0.1/", "mistral-v0.3/",
        "mistral-small-3.1/", "deepseek-r1-distill-qwen/", "glm-4.6/"}) {
    int rendered = 0;
    for (const GoldenCase& c : cases) {
      if (c.name.rfind(family, 0) == 0 && c.error.empty()) ++rendered;
    }
    EXPECT_GE(rendered, 4) << family;
  }
}

}  // namespace
}  // namespace quantd::chat_template
