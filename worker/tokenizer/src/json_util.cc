#include "json_util.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "path_guard/confined_io.h"

namespace quantd::tokenizer {
namespace {

absl::StatusOr<const Json*> Field(const Json& obj, std::string_view key, std::string_view where) {
  if (!obj.is_object()) return JsonError(where, "expected a JSON object");
  auto it = obj.find(std::string(key));
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

absl::Status Missing(std::string_view key, std::string_view where) {
  return JsonError(where, absl::StrCat("missing field \"", std::string(key), "\""));
}

absl::Status WrongType(std::string_view key, std::string_view where, std::string_view expected) {
  return JsonError(
      where, absl::StrCat("field \"", std::string(key), "\" must be ", std::string(expected)));
}

}  // namespace

absl::StatusOr<Json> ReadJsonFile(const std::string& path) {
  std::unique_ptr<std::istream> in = path_guard::OpenInputStream(path);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat(path, ": cannot open file: ", path_guard::ErrorText(errno)));
  }
  std::stringstream buffer;
  buffer << in->rdbuf();
  Json doc = Json::parse(buffer.str(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not valid JSON"));
  }
  return doc;
}

absl::Status JsonError(std::string_view where, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(std::string(where), ": ", what));
}

template <typename T>
absl::StatusOr<T> GetTyped(const Json& obj, std::string_view key, std::string_view where,
                           const std::optional<T>& fallback, bool (Json::*is_type)() const noexcept,
                           std::string_view expected) {
  absl::StatusOr<const Json*> f = Field(obj, key, where);
  if (!f.ok()) return f.status();
  if (*f == nullptr) {
    if (fallback) return *fallback;
    return Missing(key, where);
  }
  if (!((*f)->*is_type)()) return WrongType(key, where, expected);
  return (*f)->get<T>();
}

absl::StatusOr<std::string> GetString(const Json& obj, std::string_view key, std::string_view where,
                                      std::optional<std::string> fallback) {
  return GetTyped<std::string>(obj, key, where, fallback, &Json::is_string, "a string");
}

absl::StatusOr<bool> GetBool(const Json& obj, std::string_view key, std::string_view where,
                             std::optional<bool> fallback) {
  return GetTyped<bool>(obj, key, where, fallback, &Json::is_boolean, "true or false");
}

absl::StatusOr<int64_t> GetInt(const Json& obj, std::string_view key, std::string_view where,
                               std::optional<int64_t> fallback) {
  return GetTyped<int64_t>(obj, key, where, fallback, &Json::is_number_integer, "an integer");
}

bool ConfigBool(const Json& config, const char* key, bool fallback) {
  if (!config.is_object()) return fallback;
  const auto it = config.find(key);
  return it != config.end() && it->is_boolean() ? it->get<bool>() : fallback;
}

absl::StatusOr<std::string> GetType(const Json& obj, std::string_view where) {
  return GetString(obj, "type", where);
}

}  // namespace quantd::tokenizer
