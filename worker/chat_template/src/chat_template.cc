// Placeholder until the chat template engine lands (issue 3).
#include "quantd/chat_template/chat_template.h"

namespace quantd::chat_template {

struct ChatTemplate::Impl {};
ChatTemplate::ChatTemplate(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ChatTemplate::~ChatTemplate() = default;
ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;

absl::StatusOr<ChatTemplate> ChatTemplate::Parse(std::string_view source,
                                                 std::string_view origin) {
  return absl::UnimplementedError("chat templates not implemented yet (issue 3)");
}

}  // namespace quantd::chat_template
