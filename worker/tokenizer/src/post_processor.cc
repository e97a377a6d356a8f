#include "post_processor.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace quantd::tokenizer {
namespace {

// Roberta/Bert: {"cls": ["<s>", 0], "sep": ["</s>", 2]}.
absl::StatusOr<int32_t> PairId(const Json& json, const char* key, const std::string& at) {
  const auto it = json.find(key);
  if (it == json.end() || !it->is_array() || it->size() != 2 || !(*it)[1].is_number_integer()) {
    return JsonError(at, absl::StrCat("\"", key, "\" must be [token, id]"));
  }
  return (*it)[1].get<int32_t>();
}

absl::Status AddTemplate(const Json& json, const std::string& at, PostProcessor& out) {
  const auto single = json.find("single");
  if (single == json.end() || !single->is_array()) {
    return JsonError(at, "TemplateProcessing needs a \"single\" array");
  }
  const auto specials = json.find("special_tokens");
  bool seen_sequence = false;
  for (const Json& item : *single) {
    if (item.contains("Sequence")) {
      seen_sequence = true;
      continue;
    }
    const auto special = item.find("SpecialToken");
    if (special == item.end() || !special->contains("id") || !(*special)["id"].is_string()) {
      return JsonError(
          at, "template items must be {\"Sequence\": ...} or {\"SpecialToken\": {\"id\": ...}}");
    }
    const std::string name = (*special)["id"].get<std::string>();
    if (specials == json.end() || !specials->contains(name) || !(*specials)[name].contains("ids") ||
        !(*specials)[name]["ids"].is_array()) {
      return JsonError(
          at, absl::StrCat("template token \"", name, "\" has no entry in special_tokens"));
    }
    for (const Json& id : (*specials)[name]["ids"]) {
      if (!id.is_number_integer())
        return JsonError(at, absl::StrCat("special_tokens \"", name, "\" ids must be integers"));
      (seen_sequence ? out.suffix : out.prefix).push_back(id.get<int32_t>());
    }
  }
  if (!seen_sequence) return JsonError(at, "TemplateProcessing \"single\" lacks the $A sequence");
  return absl::OkStatus();
}

absl::Status AddFromJson(const Json& json, const std::string& at, PostProcessor& out) {
  absl::StatusOr<std::string> type = GetType(json, at);
  if (!type.ok()) return type.status();
  if (*type == "ByteLevel") return absl::OkStatus();
  if (*type == "TemplateProcessing") return AddTemplate(json, at, out);
  if (*type == "RobertaProcessing" || *type == "BertProcessing") {
    absl::StatusOr<int32_t> cls = PairId(json, "cls", at);
    absl::StatusOr<int32_t> sep = PairId(json, "sep", at);
    if (!cls.ok()) return cls.status();
    if (!sep.ok()) return sep.status();
    out.prefix.push_back(*cls);
    out.suffix.push_back(*sep);
    return absl::OkStatus();
  }
  if (*type == "Sequence") {
    const auto list = json.find("processors");
    if (list == json.end() || !list->is_array())
      return JsonError(at, "Sequence needs a \"processors\" array");
    for (const Json& item : *list) {
      if (absl::Status s = AddFromJson(item, at, out); !s.ok()) return s;
    }
    return absl::OkStatus();
  }
  return JsonError(at, absl::StrCat("unsupported post_processor type \"", *type, "\""));
}

}  // namespace

absl::StatusOr<PostProcessor> PostProcessorFromJson(const Json& json, std::string_view where) {
  PostProcessor out;
  if (json.is_null()) return out;
  if (absl::Status s = AddFromJson(json, absl::StrCat(std::string(where), ": post_processor"), out);
      !s.ok()) {
    return s;
  }
  return out;
}

}  // namespace quantd::tokenizer
