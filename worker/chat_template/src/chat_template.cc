// Public entry points: parsing, rendering and finding a model's template.
#include "quantd/chat_template/chat_template.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "ast.h"
#include "lexer.h"
#include "parser.h"
#include "path_guard/confined_io.h"
#include "renderer.h"
#include "value.h"

namespace quantd::chat_template {

struct ChatTemplate::Impl {
  std::string origin;
  NodeList nodes;

  absl::Status WithOrigin(const absl::Status& status) const {
    if (status.ok() || origin.empty()) return status;
    return absl::Status(status.code(), absl::StrCat(origin, ": ", status.message()));
  }

  absl::StatusOr<std::string> Render(const Value& context) const {
    absl::StatusOr<std::string> out = RenderTemplate(nodes, context);
    if (!out.ok()) return WithOrigin(out.status());
    return out;
  }
};

ChatTemplate::ChatTemplate(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ChatTemplate::~ChatTemplate() = default;
ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;

absl::StatusOr<ChatTemplate> ChatTemplate::Parse(std::string_view source, std::string_view origin) {
  auto impl = std::make_unique<Impl>();
  impl->origin = std::string(origin);
  absl::StatusOr<std::vector<Token>> tokens = Tokenize(source);
  if (!tokens.ok()) return impl->WithOrigin(tokens.status());
  absl::StatusOr<NodeList> nodes = ParseTemplate(*tokens);
  if (!nodes.ok()) return impl->WithOrigin(nodes.status());
  impl->nodes = *std::move(nodes);
  return ChatTemplate(std::move(impl));
}

absl::StatusOr<std::string> ChatTemplate::Render(const nlohmann::json& context) const {
  return impl_->Render(Value::FromJson(context));
}

absl::StatusOr<std::string> ChatTemplate::RenderOrdered(
    const nlohmann::ordered_json& context) const {
  return impl_->Render(Value::FromJson(context));
}

absl::StatusOr<std::string> ChatTemplate::Render(const std::vector<ChatMessage>& messages,
                                                 bool add_generation_prompt,
                                                 std::string_view bos_token,
                                                 std::string_view eos_token) const {
  nlohmann::ordered_json context = nlohmann::ordered_json::object();
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const ChatMessage& m : messages) {
    list.push_back({{"role", m.role}, {"content", m.content}});
  }
  context["messages"] = std::move(list);
  context["tools"] = nullptr;
  context["documents"] = nullptr;
  context["add_generation_prompt"] = add_generation_prompt;
  if (!bos_token.empty()) context["bos_token"] = std::string(bos_token);
  if (!eos_token.empty()) context["eos_token"] = std::string(eos_token);
  return RenderOrdered(context);
}

namespace {

absl::StatusOr<std::string> ReadFile(const std::filesystem::path& path) {
  std::unique_ptr<std::istream> in = path_guard::OpenInputStream(path.string());
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read ", path.string(), ": ", path_guard::ErrorText(errno)));
  }
  std::ostringstream buf;
  buf << in->rdbuf();
  if (in->bad()) return absl::DataLossError(absl::StrCat("error reading ", path.string()));
  return buf.str();
}

absl::StatusOr<nlohmann::json> ReadJson(const std::filesystem::path& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(path.string(), ": not valid JSON"));
  }
  if (!j.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(path.string(), ": expected a JSON object"));
  }
  return j;
}

// tokenizer_config.json's "chat_template": a string, or a list of {"name", "template"}.
absl::StatusOr<std::optional<std::string>> TemplateFromField(const nlohmann::json& field,
                                                             const std::string& where) {
  if (field.is_null()) return std::optional<std::string>();
  if (field.is_string()) return std::optional<std::string>(field.get<std::string>());
  if (!field.is_array()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where,
                     ": \"chat_template\" must be a string or a list of "
                     "{\"name\", \"template\"} objects"));
  }
  std::vector<std::string> names;
  for (const auto& entry : field) {
    if (!entry.is_object() || !entry.contains("name") || !entry["name"].is_string() ||
        !entry.contains("template") || !entry["template"].is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": each \"chat_template\" list entry must have string \"name\" and \"template\""));
    }
    std::string name = entry["name"].get<std::string>();
    if (name == "default") return std::optional<std::string>(entry["template"].get<std::string>());
    names.push_back(name);
  }
  return absl::InvalidArgumentError(absl::StrCat(where, ": \"chat_template\" lists templates [",
                                                 absl::StrJoin(names, ", "),
                                                 "] but none is named \"default\""));
}

}  // namespace

absl::StatusOr<std::optional<std::string>> LoadChatTemplateSource(std::string_view model_dir) {
  const std::filesystem::path dir{std::string(model_dir)};
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return absl::NotFoundError(absl::StrCat("model directory ", dir.string(), " does not exist"));
  }
  const std::filesystem::path jinja = dir / "chat_template.jinja";
  if (std::filesystem::exists(jinja, ec)) {
    absl::StatusOr<std::string> text = ReadFile(jinja);
    if (!text.ok()) return text.status();
    return std::optional<std::string>(*std::move(text));
  }
  const std::filesystem::path json_file = dir / "chat_template.json";
  if (std::filesystem::exists(json_file, ec)) {
    absl::StatusOr<nlohmann::json> j = ReadJson(json_file);
    if (!j.ok()) return j.status();
    if (!j->contains("chat_template") || !(*j)["chat_template"].is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat(json_file.string(), ": expected a string field \"chat_template\""));
    }
    return std::optional<std::string>((*j)["chat_template"].get<std::string>());
  }
  const std::filesystem::path config = dir / "tokenizer_config.json";
  if (std::filesystem::exists(config, ec)) {
    absl::StatusOr<nlohmann::json> j = ReadJson(config);
    if (!j.ok()) return j.status();
    if (!j->contains("chat_template")) return std::optional<std::string>();
    return TemplateFromField((*j)["chat_template"], config.string());
  }
  return std::optional<std::string>();
}

}  // namespace quantd::chat_template
