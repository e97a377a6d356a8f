// LoadChatTemplateSource finds a model directory's template the way transformers does, and the
// convenience Render / fallback entry points behave as apply_chat_template and the seed script.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "golden_test_support.h"
#include "gtest/gtest.h"
#include "quantd/chat_template/chat_template.h"
#include "tests/testing/test_data.h"

namespace quantd::chat_template {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

class ModelDir {
 public:
  ModelDir() {
    path_ = fs::temp_directory_path() /
            ("quantd_chat_template_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~ModelDir() { fs::remove_all(path_); }
  void Write(const std::string& name, const std::string& content) const {
    std::ofstream(path_ / name, std::ios::binary) << content;
  }
  std::string path() const { return path_.string(); }

 private:
  fs::path path_;
};

TEST(LoadChatTemplateSourceTest, ReadsChatTemplateJinja) {
  ModelDir dir;
  dir.Write("chat_template.jinja", "{{ 'jinja' }}\n");
  dir.Write("chat_template.json", R"({"chat_template": "json"})");
  dir.Write("tokenizer_config.json", R"({"chat_template": "config"})");
  auto src = LoadChatTemplateSource(dir.path());
  ASSERT_TRUE(src.ok()) << src.status();
  EXPECT_EQ(src->value(), "{{ 'jinja' }}\n");
}

TEST(LoadChatTemplateSourceTest, ChatTemplateJsonBeatsTokenizerConfig) {
  ModelDir dir;
  dir.Write("chat_template.json", R"({"chat_template": "from json"})");
  dir.Write("tokenizer_config.json", R"({"chat_template": "config"})");
  auto src = LoadChatTemplateSource(dir.path());
  ASSERT_TRUE(src.ok()) << src.status();
  EXPECT_EQ(src->value(), "from json");
}

TEST(LoadChatTemplateSourceTest, TokenizerConfigStringAndNamedList) {
  ModelDir dir;
  dir.Write("tokenizer_config.json", R"({"eos_token": "</s>", "chat_template": "plain"})");
  auto plain = LoadChatTemplateSource(dir.path());
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->value(), "plain");

  dir.Write("tokenizer_config.json",
            R"({"chat_template": [{"name": "tool_use", "template": "T"},
                                  {"name": "default", "template": "D"}]})");
  auto named = LoadChatTemplateSource(dir.path());
  ASSERT_TRUE(named.ok()) << named.status();
  EXPECT_EQ(named->value(), "D");
}

TEST(LoadChatTemplateSourceTest, NoTemplateIsNullopt) {
  ModelDir dir;
  auto empty = LoadChatTemplateSource(dir.path());
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_FALSE(empty->has_value());
  dir.Write("tokenizer_config.json", R"({"eos_token": "</s>"})");
  auto absent = LoadChatTemplateSource(dir.path());
  ASSERT_TRUE(absent.ok()) << absent.status();
  EXPECT_FALSE(absent->has_value());
  dir.Write("tokenizer_config.json", R"({"chat_template": null})");
  auto null_field = LoadChatTemplateSource(dir.path());
  ASSERT_TRUE(null_field.ok()) << null_field.status();
  EXPECT_FALSE(null_field->has_value());
}

TEST(LoadChatTemplateSourceTest, MalformedFilesAreClearErrors) {
  ModelDir dir;
  dir.Write("tokenizer_config.json", R"({"chat_template": "x",)");
  auto bad_json = LoadChatTemplateSource(dir.path());
  ASSERT_FALSE(bad_json.ok());
  EXPECT_EQ(bad_json.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad_json.status().message()),
              HasSubstr("tokenizer_config.json: not valid JSON"));

  dir.Write("tokenizer_config.json", R"({"chat_template": 42})");
  auto wrong_type = LoadChatTemplateSource(dir.path());
  ASSERT_FALSE(wrong_type.ok());
  EXPECT_THAT(std::string(wrong_type.status().message()),
              HasSubstr("\"chat_template\" must be a string or a list"));

  dir.Write("tokenizer_config.json", R"({"chat_template": [{"name": "rag", "template": "R"},
                                                            {"name": "tool_use", "template": "T"}]})");
  auto no_default = LoadChatTemplateSource(dir.path());
  ASSERT_FALSE(no_default.ok());
  EXPECT_THAT(std::string(no_default.status().message()),
              HasSubstr("lists templates [rag, tool_use] but none is named \"default\""));

  dir.Write("tokenizer_config.json", R"({"chat_template": [{"name": "default"}]})");
  auto no_template = LoadChatTemplateSource(dir.path());
  ASSERT_FALSE(no_template.ok());
  EXPECT_THAT(std::string(no_template.status().message()),
              HasSubstr("must have string \"name\" and \"template\""));

  dir.Write("tokenizer_config.json", "[1, 2]");
  auto not_object = LoadChatTemplateSource(dir.path());
  ASSERT_FALSE(not_object.ok());
  EXPECT_THAT(std::string(not_object.status().message()), HasSubstr("expected a JSON object"));

  dir.Write("chat_template.json", R"({"template": "x"})");
  auto json_without_field = LoadChatTemplateSource(dir.path());
  ASSERT_FALSE(json_without_field.ok());
  EXPECT_THAT(std::string(json_without_field.status().message()),
              HasSubstr("chat_template.json: expected a string field \"chat_template\""));
}

TEST(LoadChatTemplateSourceTest, MissingDirectoryIsNotFound) {
  auto missing = LoadChatTemplateSource("/nonexistent/quantd/model");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("/nonexistent/quantd/model"));
}

TEST(LoadChatTemplateSourceTest, QwenTokenizerFilesMatchTheGoldenTemplates) {
  const std::string tokenizers = quantd::test_data::Path("tokenizers");
  for (const char* model : {"qwen2.5", "qwen3"}) {
    auto src = LoadChatTemplateSource(tokenizers + "/" + model);
    ASSERT_TRUE(src.ok()) << src.status();
    ASSERT_TRUE(src->has_value()) << model;
    EXPECT_EQ(src->value(),
              testing::ReadTextFile(testing::GoldenDir() + "/templates/" + model + ".jinja"))
        << model;
  }
}

// The convenience overload passes what apply_chat_template passes; compare with the golden
// rendering of the same conversation.
TEST(ChatTemplateRenderTest, MessagesOverloadMatchesApplyChatTemplate) {
  const std::string tokenizers = quantd::test_data::Path("tokenizers");
  std::vector<testing::GoldenCase> cases = testing::LoadGoldenCases("expected.json");
  const std::vector<ChatMessage> messages = {{"system", "You are a helpful assistant."},
                                             {"user", "Hello! How are you?"}};
  for (const char* model : {"qwen2.5", "qwen3"}) {
    auto src = LoadChatTemplateSource(tokenizers + "/" + model);
    ASSERT_TRUE(src.ok() && src->has_value()) << model;
    auto tmpl = ChatTemplate::Parse(**src, model);
    ASSERT_TRUE(tmpl.ok()) << tmpl.status();
    for (bool generation : {true, false}) {
      const std::string name =
          std::string(model) + "/system_user/" + (generation ? "gen" : "nogen");
      auto golden = std::find_if(cases.begin(), cases.end(),
                                 [&](const testing::GoldenCase& c) { return c.name == name; });
      ASSERT_NE(golden, cases.end()) << name;
      auto out = tmpl->Render(messages, generation, "", "<|im_end|>");
      ASSERT_TRUE(out.ok()) << out.status();
      EXPECT_EQ(*out, golden->expected) << name;
    }
  }
}

TEST(ChatTemplateRenderTest, ConcurrentRendersAgree) {
  const std::string path = testing::GoldenDir() + "/templates/qwen3.jinja";
  auto tmpl = ChatTemplate::Parse(testing::ReadTextFile(path), path);
  ASSERT_TRUE(tmpl.ok()) << tmpl.status();
  const std::vector<ChatMessage> messages = {
      {"system", "s"}, {"user", "u"}, {"assistant", "<think>\nr\n</think>\n\na"}, {"user", "v"}};
  auto reference = tmpl->Render(messages, true, "", "<|im_end|>");
  ASSERT_TRUE(reference.ok()) << reference.status();
  std::vector<std::string> results(4);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < results.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        auto out = tmpl->Render(messages, true, "", "<|im_end|>");
        results[t] = out.ok() ? *out : std::string(out.status().message());
        if (results[t] != *reference) return;
      }
    });
  }
  for (auto& th : threads) th.join();
  for (const std::string& r : results) EXPECT_EQ(r, *reference);
}

TEST(ChatTemplateRenderTest, EmptySpecialTokensStayUndefinedAndToolsAreNone) {
  auto tmpl = ChatTemplate::Parse(
      "{{ bos_token is defined }} {{ eos_token is defined }} {{ tools is none }} "
      "{{ documents is none }} {{ add_generation_prompt }} {{ messages | length }}",
      "");
  ASSERT_TRUE(tmpl.ok()) << tmpl.status();
  auto unset = tmpl->Render({{"user", "x"}}, true, "", "");
  ASSERT_TRUE(unset.ok()) << unset.status();
  EXPECT_EQ(*unset, "False False True True True 1");
  auto set = tmpl->Render({}, false, "<s>", "</s>");
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(*set, "True True True True False 0");
}

TEST(ChatTemplateRenderTest, OrderedContextKeepsDictOrder) {
  auto tmpl = ChatTemplate::Parse("{{ d | tojson }} {% for k in d %}{{ k }}{% endfor %}", "");
  ASSERT_TRUE(tmpl.ok()) << tmpl.status();
  auto ordered = tmpl->RenderOrdered(nlohmann::ordered_json::parse(R"({"d": {"b": 1, "a": 2}})"));
  ASSERT_TRUE(ordered.ok()) << ordered.status();
  EXPECT_EQ(*ordered, R"({"b": 1, "a": 2} ba)");
  auto sorted = tmpl->Render(nlohmann::json::parse(R"({"d": {"b": 1, "a": 2}})"));
  ASSERT_TRUE(sorted.ok()) << sorted.status();
  EXPECT_EQ(*sorted, R"({"a": 2, "b": 1} ab)");
}

TEST(ChatTemplateRenderTest, NonObjectContextIsAnError) {
  auto tmpl = ChatTemplate::Parse("x", "");
  ASSERT_TRUE(tmpl.ok());
  auto out = tmpl->Render(nlohmann::json::array());
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
}

// The seed script falls back to ChatML when the tokenizer has no template or applying it raises.
// Each such case must surface as a status the caller can act on, and the fallback must render.
TEST(ChatMlFallbackTest, FallbackWorthyConditionsAreDetectable) {
  ModelDir dir;
  dir.Write("tokenizer_config.json", R"({"eos_token": "</s>"})");
  auto none = LoadChatTemplateSource(dir.path());
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());  // No template: fall back.

  auto unsupported = ChatTemplate::Parse("{% include 'x.jinja' %}", "cfg");
  ASSERT_FALSE(unsupported.ok());  // Construct we do not support: fall back.
  EXPECT_EQ(unsupported.status().code(), absl::StatusCode::kInvalidArgument);

  auto strict = ChatTemplate::Parse(
      "{% if messages[0].role == 'system' %}{{ raise_exception('System role not supported') }}"
      "{% endif %}{{ messages[0].content }}",
      "cfg");
  ASSERT_TRUE(strict.ok());
  const std::vector<ChatMessage> messages = {{"system", "be brief"}, {"user", "hi"}};
  auto refused = strict->Render(messages, true, "", "");
  ASSERT_FALSE(refused.ok());  // The template refuses the conversation: fall back.
  EXPECT_EQ(refused.status().message(),
            "cfg: chat template line 1: raise_exception: System role not supported");

  EXPECT_EQ(RenderChatMlFallback(messages, true),
            "<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"
            "<|im_start|>assistant\n");
}

TEST(ChatMlFallbackTest, MatchesQwen25ForSystemAndUser) {
  std::vector<testing::GoldenCase> cases = testing::LoadGoldenCases("expected.json");
  auto golden = std::find_if(cases.begin(), cases.end(), [](const testing::GoldenCase& c) {
    return c.name == "qwen2.5/system_user/gen";
  });
  ASSERT_NE(golden, cases.end());
  EXPECT_EQ(
      RenderChatMlFallback(
          {{"system", "You are a helpful assistant."}, {"user", "Hello! How are you?"}}, true),
      golden->expected);
  EXPECT_EQ(RenderChatMlFallback({{"user", "hi"}}, false), "<|im_start|>user\nhi<|im_end|>\n");
}

}  // namespace
}  // namespace quantd::chat_template
