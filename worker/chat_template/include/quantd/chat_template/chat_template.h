// ChatTemplate: renders the Jinja chat templates that models ship, as transformers'
// apply_chat_template(..., tokenize=False) does (Jinja2 sandbox, trim_blocks, lstrip_blocks,
// loop controls, tojson with ensure_ascii=False, raise_exception, strftime_now).
#ifndef QUANTD_CHAT_TEMPLATE_CHAT_TEMPLATE_H_
#define QUANTD_CHAT_TEMPLATE_CHAT_TEMPLATE_H_

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace quantd::chat_template {

struct ChatMessage {
  std::string role;
  std::string content;
};

class ChatTemplate {
 public:
  ~ChatTemplate();
  ChatTemplate(ChatTemplate&&) noexcept;
  ChatTemplate& operator=(ChatTemplate&&) noexcept;

  // Parses a template. An unsupported construct or a syntax error is InvalidArgument naming the
  // construct and the line. `origin` (e.g. a file path) prefixes error messages.
  static absl::StatusOr<ChatTemplate> Parse(std::string_view source, std::string_view origin);

  // Renders with an arbitrary context (messages, add_generation_prompt, bos_token, tools, ...).
  // Runtime errors (raise_exception, undefined attribute access, type errors) are
  // InvalidArgument "chat template line N: ..."; raise_exception's carries
  // "raise_exception: <the template's message>". nlohmann::json sorts object keys, so
  // `tojson` and `items()` see keys sorted; use RenderOrdered to keep Python-dict order.
  absl::StatusOr<std::string> Render(const nlohmann::json& context) const;

  // As Render, with object keys in document order, as a Python dict built from the same JSON
  // would have them (what transformers sees).
  absl::StatusOr<std::string> RenderOrdered(const nlohmann::ordered_json& context) const;

  // The common case: messages plus add_generation_prompt, bos_token and eos_token, with tools and
  // documents None, as transformers' apply_chat_template passes them. An empty bos_token or
  // eos_token is left undefined (transformers omits tokens the tokenizer does not have).
  absl::StatusOr<std::string> Render(const std::vector<ChatMessage>& messages,
                                     bool add_generation_prompt, std::string_view bos_token,
                                     std::string_view eos_token) const;

 private:
  struct Impl;
  explicit ChatTemplate(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Finds a model directory's default chat template: chat_template.jinja, else chat_template.json,
// else tokenizer_config.json's "chat_template" (a string, or a list of {name, template} where the
// one named "default" is used). Returns nullopt when the model has none; NotFound when the
// directory does not exist; InvalidArgument naming the file for malformed JSON or fields.
//
// Falling back as the seed script does: nullopt here, or any error from Parse or Render, means
// "use RenderChatMlFallback and say so in the job log"; all of those errors are InvalidArgument
// with the template line in the message.
absl::StatusOr<std::optional<std::string>> LoadChatTemplateSource(std::string_view model_dir);

// The format the seed script falls back to when a model has no usable template (none, one we
// cannot parse, or one that fails to render): Qwen's ChatML,
// "<|im_start|>{role}\n{content}<|im_end|>\n" per message, then "<|im_start|>assistant\n" when
// add_generation_prompt. Callers should say in the job log that they fell back.
std::string RenderChatMlFallback(const std::vector<ChatMessage>& messages,
                                 bool add_generation_prompt);

}  // namespace quantd::chat_template

#endif  // QUANTD_CHAT_TEMPLATE_CHAT_TEMPLATE_H_
