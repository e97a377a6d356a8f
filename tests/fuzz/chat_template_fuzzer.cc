// Chat templates on arbitrary text: the Jinja lexer and parser, then rendering what parsed with
// the seed's [system, user] messages and add_generation_prompt.
#include <cstdint>
#include <string_view>

#include "quantd/chat_template/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto tmpl = quantd::chat_template::ChatTemplate::Parse(
      std::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
  if (!tmpl.ok()) return 0;
  (void)tmpl->Render({{"system", "You are helpful."}, {"user", "Hi <b>\"there\"</b>"}},
                     /*add_generation_prompt=*/true, "<s>", "</s>");
  return 0;
}
