// The seed script's fallback chat format (Qwen's ChatML).
#include "quantd/chat_template/chat_template.h"

namespace quantd::chat_template {

std::string RenderChatMlFallback(const std::vector<ChatMessage>& messages,
                                 bool add_generation_prompt) {
  std::string out;
  for (const ChatMessage& m : messages) {
    out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
  }
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

}  // namespace quantd::chat_template
