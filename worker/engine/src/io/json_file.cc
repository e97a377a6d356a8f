#include "io/json_file.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "io/file_util.h"

namespace quantd::engine {

absl::StatusOr<nlohmann::json> ParseJson(std::string_view text, std::string_view origin) {
  nlohmann::json json = nlohmann::json::parse(text.begin(), text.end(), nullptr,
                                              /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(std::string(origin), ": invalid JSON"));
  }
  return json;
}

absl::StatusOr<nlohmann::json> ReadJsonFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok()) return text.status();
  return ParseJson(*text, path);
}

bool JsonFields::Has(const char* key) const {
  auto it = object_.find(key);
  return it != object_.end() && !it->is_null();
}

std::string JsonFields::FieldName(const char* key) const { return absl::StrCat(prefix_, key); }

const nlohmann::json* JsonFields::Find(const char* key) const {
  auto it = object_.find(key);
  return it == object_.end() || it->is_null() ? nullptr : &*it;
}

absl::Status JsonFields::Unsupported(const char* key, std::string_view what) const {
  return absl::FailedPreconditionError(
      absl::StrCat(origin_, ": field '", FieldName(key), "': ", std::string(what)));
}

absl::Status JsonFields::Error(const char* key, std::string_view what) const {
  return absl::InvalidArgumentError(
      absl::StrCat(origin_, ": field '", FieldName(key), "': ", std::string(what)));
}

absl::StatusOr<std::optional<int64_t>> JsonFields::OptionalInt(const char* key) const {
  if (!Has(key)) return std::optional<int64_t>();
  const nlohmann::json& v = object_.at(key);
  if (v.is_number_integer()) return std::optional<int64_t>(v.get<int64_t>());
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::floor(d) == d && std::abs(d) < 9e15) return std::optional<int64_t>(int64_t(d));
  }
  return Error(key, absl::StrCat("expected an integer, found ", v.dump()));
}

absl::StatusOr<int64_t> JsonFields::RequiredInt(const char* key) const {
  absl::StatusOr<std::optional<int64_t>> v = OptionalInt(key);
  if (!v.ok()) return v.status();
  if (!v->has_value()) return Error(key, "missing (expected an integer)");
  return **v;
}

absl::StatusOr<std::optional<double>> JsonFields::OptionalNumber(const char* key) const {
  if (!Has(key)) return std::optional<double>();
  const nlohmann::json& v = object_.at(key);
  if (!v.is_number()) return Error(key, absl::StrCat("expected a number, found ", v.dump()));
  return std::optional<double>(v.get<double>());
}

absl::StatusOr<std::optional<bool>> JsonFields::OptionalBool(const char* key) const {
  if (!Has(key)) return std::optional<bool>();
  const nlohmann::json& v = object_.at(key);
  if (!v.is_boolean()) return Error(key, absl::StrCat("expected true or false, found ", v.dump()));
  return std::optional<bool>(v.get<bool>());
}

absl::StatusOr<std::optional<std::string>> JsonFields::OptionalString(const char* key) const {
  if (!Has(key)) return std::optional<std::string>();
  const nlohmann::json& v = object_.at(key);
  if (!v.is_string()) return Error(key, absl::StrCat("expected a string, found ", v.dump()));
  return std::optional<std::string>(v.get<std::string>());
}

}  // namespace quantd::engine
