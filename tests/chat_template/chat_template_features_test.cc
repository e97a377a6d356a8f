// One construct per case (whitespace control, operators, filters, tests, loops, scoping, string
// methods, runtime errors), each compared with Python Jinja2's rendering
// (tests/golden/chat_template/features_expected.json).
#include <string>

#include "golden_test_support.h"
#include "gtest/gtest.h"
#include "quantd/chat_template/chat_template.h"

namespace quantd::chat_template {
namespace {

using testing::GoldenCase;

class ChatTemplateFeatureTest : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(ChatTemplateFeatureTest, MatchesJinja2) {
  const GoldenCase& c = GetParam();
  absl::StatusOr<ChatTemplate> tmpl = ChatTemplate::Parse(c.template_source, "");
  ASSERT_TRUE(tmpl.ok()) << tmpl.status();
  absl::StatusOr<std::string> out = tmpl->RenderOrdered(c.context);
  if (!c.error.empty()) {
    ASSERT_FALSE(out.ok()) << "Jinja2 raised " << c.error_type << " \"" << c.error
                           << "\" but we rendered: " << *out;
    const std::string message(out.status().message());
    EXPECT_EQ(message.rfind("chat template line ", 0), 0u) << message;
    if (c.error_type == "TemplateError") {  // raise_exception: the template's own message.
      EXPECT_NE(message.find("raise_exception: " + c.error), std::string::npos) << message;
    }
    return;
  }
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, testing::SubstituteStrftime(c.expected));
}

INSTANTIATE_TEST_SUITE_P(Jinja2, ChatTemplateFeatureTest,
                         ::testing::ValuesIn(testing::LoadGoldenCases("features_expected.json")),
                         testing::CaseName);

TEST(ChatTemplateFeatureFileTest, IsPresent) {
  EXPECT_GE(testing::LoadGoldenCases("features_expected.json").size(), 60u);
}

}  // namespace
}  // namespace quantd::chat_template
