// Malformed and unsupported templates must fail with a clear InvalidArgument naming the construct
// and its line — never crash — so the caller can fall back to ChatML, as the seed script does.
#include <random>
#include <string>

#include "gmock/gmock.h"
#include "golden_test_support.h"
#include "gtest/gtest.h"
#include "quantd/chat_template/chat_template.h"

namespace quantd::chat_template {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string ParseError(const std::string& source) {
  absl::StatusOr<ChatTemplate> t = ChatTemplate::Parse(source, "");
  if (t.ok()) return "(parsed)";
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(t.status().message());
}

std::string RenderError(const std::string& source, const nlohmann::json& context) {
  absl::StatusOr<ChatTemplate> t = ChatTemplate::Parse(source, "");
  if (!t.ok()) return "(parse error) " + std::string(t.status().message());
  absl::StatusOr<std::string> out = t->Render(context);
  if (out.ok()) return "(rendered) " + *out;
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(out.status().message());
}

TEST(ChatTemplateErrorsTest, UnclosedBlockNamesTagAndOpeningLine) {
  EXPECT_EQ(ParseError("a\n{% if x %}\nno end"),
            "chat template line 2: unclosed 'if' tag: missing 'endif'");
  EXPECT_EQ(ParseError("{% for m in messages %}{{ m }}"),
            "chat template line 1: unclosed 'for' tag: missing 'endfor'");
  EXPECT_EQ(ParseError("{% macro f() %}x"),
            "chat template line 1: unclosed 'macro' tag: missing 'endmacro'");
}

TEST(ChatTemplateErrorsTest, UnclosedTagsAndComments) {
  EXPECT_EQ(ParseError("x\n{{ messages "), "chat template line 2: unclosed tag: missing '}}'");
  EXPECT_EQ(ParseError("{% if true "), "chat template line 1: unclosed tag: missing '%}'");
  EXPECT_EQ(ParseError("a\n\n{# never closed"),
            "chat template line 3: unclosed comment: missing '#}'");
  EXPECT_EQ(ParseError("{{ 'abc }}"), "chat template line 1: unterminated string literal");
}

TEST(ChatTemplateErrorsTest, UnsupportedConstructsAreNamed) {
  EXPECT_EQ(ParseError("line1\nline2\n{{ text | wordwrap(10) }}"),
            "chat template line 3: unsupported filter 'wordwrap'");
  EXPECT_EQ(ParseError("{% include 'other.jinja' %}"),
            "chat template line 1: unsupported tag 'include'");
  EXPECT_EQ(ParseError("{% raw %}x{% endraw %}"), "chat template line 1: unsupported tag 'raw'");
  EXPECT_EQ(ParseError("{{ x is divisible(2) }}"),
            "chat template line 1: unsupported test 'divisible'");
  EXPECT_THAT(ParseError("{{ f(*args) }}"), HasSubstr("unsupported construct '*args'"));
  EXPECT_THAT(ParseError("{% for x in y recursive %}{% endfor %}"),
              HasSubstr("unsupported construct 'for ... recursive'"));
}

TEST(ChatTemplateErrorsTest, BadSyntax) {
  EXPECT_EQ(ParseError("{% endif %}"), "chat template line 1: unexpected 'endif' tag");
  EXPECT_EQ(ParseError("{{ 1 + }}"), "chat template line 1: unexpected '}}' in expression");
  EXPECT_EQ(ParseError("{{ a @ b }}"), "chat template line 1: unexpected character '@'");
  EXPECT_EQ(ParseError("{% if %}{% endif %}"),
            "chat template line 1: unexpected '%}' in expression");
  EXPECT_EQ(ParseError("{% set = 1 %}"), "chat template line 1: expected a name, got '='");
  EXPECT_EQ(ParseError("{{ x }"), "chat template line 1: unclosed tag: missing '}}'");
  EXPECT_EQ(ParseError("{% for x of y %}{% endfor %}"),
            "chat template line 1: expected 'in', got 'of'");
  EXPECT_EQ(ParseError("{{ (1, 2 }}"), "chat template line 1: expected ')', got '}}'");
  EXPECT_THAT(ParseError("{%%}"), HasSubstr("expected a tag name"));
}

TEST(ChatTemplateErrorsTest, OriginPrefixesMessages) {
  absl::StatusOr<ChatTemplate> t = ChatTemplate::Parse("{{ x | nope }}", "m/tokenizer_config.json");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().message(),
            "m/tokenizer_config.json: chat template line 1: unsupported filter 'nope'");
  absl::StatusOr<ChatTemplate> ok = ChatTemplate::Parse("\n{{ raise_exception('no') }}", "T");
  ASSERT_TRUE(ok.ok());
  absl::StatusOr<std::string> out = ok->Render(nlohmann::json::object());
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().message(), "T: chat template line 2: raise_exception: no");
}

TEST(ChatTemplateErrorsTest, RaiseExceptionCarriesTheTemplateMessage) {
  const std::string mistral =
      "{% for message in messages %}\n"
      "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}\n"
      "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') "
      "}}\n"
      "{% endif %}{% endfor %}";
  nlohmann::json context = {
      {"messages", {{{"role", "user"}, {"content", "a"}}, {{"role", "user"}, {"content", "b"}}}}};
  EXPECT_EQ(RenderError(mistral, context),
            "chat template line 3: raise_exception: Conversation roles must alternate "
            "user/assistant/user/assistant/...");
}

TEST(ChatTemplateErrorsTest, RuntimeErrorsNameTheLine) {
  EXPECT_EQ(RenderError("ok\n{{ missing.attr }}", nlohmann::json::object()),
            "chat template line 2: 'missing' is undefined");
  EXPECT_EQ(RenderError("{{ d.x.y }}", {{"d", nlohmann::json::object()}}),
            "chat template line 1: 'dict object' has no attribute 'x'");
  EXPECT_EQ(RenderError("{{ 'a' + 1 }}", nlohmann::json::object()),
            "chat template line 1: unsupported operand type(s) for +: 'str' and 'int'");
  EXPECT_EQ(RenderError("{% for x in n %}{% endfor %}", {{"n", nullptr}}),
            "chat template line 1: 'NoneType' object is not iterable");
  EXPECT_EQ(RenderError("{{ l.append(1) }}", {{"l", nlohmann::json::array()}}),
            "chat template line 1: unsupported method 'list.append' (the sandbox makes lists "
            "immutable)");
  EXPECT_EQ(RenderError("{{ 'x'.format(1) }}", nlohmann::json::object()),
            "chat template line 1: unsupported method 'str.format'");
  EXPECT_EQ(RenderError("{{ '%s' % 1 }}", nlohmann::json::object()),
            "chat template line 1: unsupported construct: printf-style string formatting '%'");
  EXPECT_EQ(RenderError("{% set x = 1 %}{% set x.a = 2 %}", nlohmann::json::object()),
            "chat template line 1: cannot assign attribute 'a' on 'x': not a namespace()");
  EXPECT_EQ(RenderError("{% break %}", nlohmann::json::object()),
            "chat template line 1: 'break'/'continue' outside a for loop");
}

TEST(ChatTemplateErrorsTest, ResultsBeyondOurIntegersAndMemoryAreErrors) {
  // Python would compute these with big integers; we refuse rather than overflow.
  EXPECT_EQ(RenderError("{{ 2 ** 64 }}", nlohmann::json::object()),
            "chat template line 1: integer overflow in '**' (values beyond 64 bits are not "
            "supported)");
  EXPECT_THAT(RenderError("{{ 9223372036854775807 + 1 }}", nlohmann::json::object()),
              HasSubstr("integer overflow in '+'"));
  EXPECT_THAT(RenderError("{{ (-9223372036854775807 - 1) // -1 }}", nlohmann::json::object()),
              HasSubstr("integer overflow in '//'"));
  EXPECT_THAT(RenderError("{{ 'x' * 1000000000000 }}", nlohmann::json::object()),
              HasSubstr("sequence repetition result too large"));
  EXPECT_THAT(RenderError("{{ range(10000000000) | length }}", nlohmann::json::object()),
              HasSubstr("range() too large"));
}

// Python strings cannot hold invalid UTF-8; we keep such bytes unchanged (as surrogateescape
// would) so calibration text is never silently rewritten.
TEST(ChatTemplateErrorsTest, InvalidUtf8BytesPassThroughUnchanged) {
  auto tmpl = ChatTemplate::Parse("[{{ c | trim }}|{{ c[1:] }}|{{ c | length }}]", "");
  ASSERT_TRUE(tmpl.ok()) << tmpl.status();
  nlohmann::ordered_json context;
  context["c"] = std::string(" a\xff\xc3(b ");
  auto out = tmpl->RenderOrdered(context);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, std::string("[a\xff\xc3(b|a\xff\xc3(b |7]"));
}

TEST(ChatTemplateErrorsTest, HostileNestingIsAnErrorNotACrash) {
  EXPECT_THAT(ParseError("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}"),
              HasSubstr("nested more than 100 levels deep"));
  EXPECT_THAT(ParseError("{{ " + std::string(5000, '[') + " }}"),
              HasSubstr("nested more than 100 levels deep"));
  std::string ifs;
  for (int i = 0; i < 5000; ++i) ifs += "{% if true %}";
  EXPECT_THAT(ParseError(ifs), HasSubstr("nested more than 100 levels deep"));
  std::string nots = "{{ ";
  for (int i = 0; i < 5000; ++i) nots += "not ";
  EXPECT_THAT(ParseError(nots + "1 }}"), HasSubstr("nested more than 100 levels deep"));
  EXPECT_THAT(ParseError("{{ " + std::string(5000, '-') + "1 }}"),
              HasSubstr("nested more than 100 levels deep"));
  EXPECT_THAT(RenderError("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
                          nlohmann::json::object()),
              HasSubstr("macro 'f' nested more than 64 calls deep"));
}

TEST(ChatTemplateErrorsTest, TruncatedTemplatesNeverCrash) {
  const std::string source =
      "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>' + messages[0].content | trim "
      "}}{# c #}{%- for m in messages[1:] if m.role != 'x' %}{{ loop.index ~ m['content'] }}"
      "{%- else %}none{%- endfor %}{% set ns = namespace(a=[1, {'k': (1, 2)}]) %}{{ 'a\\n' }}"
      "{%- endif %}";
  nlohmann::json context = {{"messages", {{{"role", "system"}, {"content", "s"}}}}};
  for (size_t n = 0; n <= source.size(); ++n) {
    absl::StatusOr<ChatTemplate> t = ChatTemplate::Parse(source.substr(0, n), "");
    if (t.ok()) {
      absl::StatusOr<std::string> out = t->Render(context);
      if (!out.ok()) {
        EXPECT_THAT(std::string(out.status().message()), StartsWith("chat template line "));
      }
    } else {
      EXPECT_THAT(std::string(t.status().message()), StartsWith("chat template line ")) << n;
    }
  }
}

// Mutated real templates (characters deleted, duplicated or replaced by template punctuation) must
// parse or fail cleanly, and render or fail cleanly — never crash or hang.
TEST(ChatTemplateErrorsTest, MutatedRealTemplatesNeverCrash) {
  const char* const kTemplates[] = {"qwen2.5", "qwen3", "llama3.1", "mistral-v0.3", "glm-4.6"};
  const std::string kPunctuation = "{}%#-+()[]'\"|.:,=~ \n\\";
  nlohmann::json context = {{"messages",
                             {{{"role", "system"}, {"content", "s"}},
                              {{"role", "user"}, {"content", "u <think>\nr\n</think>\n\nx"}},
                              {{"role", "assistant"}, {"content", "a"}},
                              {{"role", "user"}, {"content", "日本"}}}},
                            {"add_generation_prompt", true},
                            {"bos_token", "<s>"},
                            {"eos_token", "</s>"},
                            {"tools", nullptr}};
  std::mt19937 rng(20261125);
  int parsed = 0;
  for (const char* name : kTemplates) {
    const std::string source =
        testing::ReadTextFile(testing::GoldenDir() + "/templates/" + name + ".jinja");
    ASSERT_FALSE(source.empty()) << name;
    for (int round = 0; round < 300; ++round) {
      std::string mutated = source;
      for (int edits = 1 + static_cast<int>(rng() % 3); edits > 0; --edits) {
        size_t at = rng() % mutated.size();
        switch (rng() % 3) {
          case 0:
            mutated.erase(at, 1 + rng() % 4);
            break;
          case 1:
            mutated.insert(at, mutated.substr(at, 1 + rng() % 8));
            break;
          default:
            mutated[at] = kPunctuation[rng() % kPunctuation.size()];
        }
      }
      absl::StatusOr<ChatTemplate> t = ChatTemplate::Parse(mutated, "");
      if (!t.ok()) {
        EXPECT_THAT(std::string(t.status().message()), StartsWith("chat template line "));
        continue;
      }
      ++parsed;
      absl::StatusOr<std::string> out = t->Render(context);
      if (!out.ok()) {
        EXPECT_THAT(std::string(out.status().message()), StartsWith("chat template line "));
      }
    }
  }
  EXPECT_GT(parsed, 100);  // Many mutations stay valid and exercise the renderer too.
}

}  // namespace
}  // namespace quantd::chat_template
