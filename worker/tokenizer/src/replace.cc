#include "replace.h"

#include "absl/strings/str_replace.h"

namespace quantd::tokenizer {

absl::StatusOr<Replacement> Replacement::FromJson(const Json& json, const std::string& at) {
  Replacement r;
  absl::StatusOr<std::string> content = GetString(json, "content", at);
  if (!content.ok()) return content.status();
  r.content_ = *content;
  const auto pattern = json.find("pattern");
  if (pattern != json.end() && pattern->is_object()) {
    if (pattern->contains("String") && (*pattern)["String"].is_string()) {
      r.literal_ = (*pattern)["String"].get<std::string>();
      return r;
    }
    if (pattern->contains("Regex") && (*pattern)["Regex"].is_string()) {
      absl::StatusOr<std::unique_ptr<Regex>> regex =
          Regex::Compile((*pattern)["Regex"].get<std::string>());
      if (!regex.ok()) return JsonError(at, regex.status().message());
      r.regex_ = std::move(*regex);
      return r;
    }
  }
  return JsonError(at, "Replace needs \"pattern\": {\"String\": ...} or {\"Regex\": ...}");
}

void Replacement::Apply(std::string& text) const {
  if (regex_ == nullptr) {
    if (!literal_.empty() && text.find(literal_) != std::string::npos) {
      text = absl::StrReplaceAll(text, {{literal_, content_}});
    }
    return;
  }
  std::string out;
  size_t prev = 0;
  regex_->ForEachMatch(text, [&](size_t start, size_t end) {
    out.append(text, prev, start - prev);
    out += content_;
    prev = end;
  });
  out.append(text, prev, std::string::npos);
  text = std::move(out);
}

}  // namespace quantd::tokenizer
