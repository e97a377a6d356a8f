// Reading JSON files with errors that name the file (nlohmann::json throws; this does not), and
// typed field access with errors that name the file and the field.
#ifndef QUANTD_ENGINE_IO_JSON_FILE_H_
#define QUANTD_ENGINE_IO_JSON_FILE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace quantd::engine {

// Parses `text`; a syntax error is InvalidArgument "<origin>: invalid JSON: ...".
absl::StatusOr<nlohmann::json> ParseJson(std::string_view text, std::string_view origin);

// Reads and parses a JSON file.
absl::StatusOr<nlohmann::json> ReadJsonFile(const std::string& path);

// Typed fields of a JSON object. `origin` names the file in errors. Missing fields (or null) give
// nullopt from the Optional* forms and InvalidArgument from the Required* forms; a field of the
// wrong type is always InvalidArgument naming it and what was expected.
class JsonFields {
 public:
  JsonFields(const nlohmann::json& object, std::string_view origin, std::string_view prefix = "")
      : object_(object), origin_(origin), prefix_(prefix) {}

  bool Has(const char* key) const;
  const std::string& origin() const { return origin_; }
  absl::StatusOr<std::optional<int64_t>> OptionalInt(const char* key) const;
  absl::StatusOr<int64_t> RequiredInt(const char* key) const;
  absl::StatusOr<std::optional<double>> OptionalNumber(const char* key) const;
  absl::StatusOr<std::optional<bool>> OptionalBool(const char* key) const;
  absl::StatusOr<std::optional<std::string>> OptionalString(const char* key) const;

  // The field's value, or nullptr when missing or null.
  const nlohmann::json* Find(const char* key) const;

  // "<origin>: field '<prefix><key>': <what>": InvalidArgument for malformed values, and
  // FailedPrecondition (Unsupported) for well-formed ones the engine does not implement.
  absl::Status Error(const char* key, std::string_view what) const;
  absl::Status Unsupported(const char* key, std::string_view what) const;
  std::string FieldName(const char* key) const;

 private:
  const nlohmann::json& object_;
  std::string origin_;
  std::string prefix_;
};

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_IO_JSON_FILE_H_
