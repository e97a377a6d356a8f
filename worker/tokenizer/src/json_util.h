// Non-throwing accessors for the nlohmann::json documents the tokenizer reads. Errors name `where`
// (file and JSON path) and what was expected.
#ifndef QUANTD_TOKENIZER_JSON_UTIL_H_
#define QUANTD_TOKENIZER_JSON_UTIL_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace quantd::tokenizer {

using Json = nlohmann::json;

// Reads and parses a JSON file.
absl::StatusOr<Json> ReadJsonFile(const std::string& path);

absl::Status JsonError(std::string_view where, absl::string_view what);

// Field accessors: a missing or null field gives `fallback`; a field of the wrong type is an error.
absl::StatusOr<std::string> GetString(const Json& obj, std::string_view key, std::string_view where,
                                      std::optional<std::string> fallback = std::nullopt);
absl::StatusOr<bool> GetBool(const Json& obj, std::string_view key, std::string_view where,
                             std::optional<bool> fallback = std::nullopt);
absl::StatusOr<int64_t> GetInt(const Json& obj, std::string_view key, std::string_view where,
                               std::optional<int64_t> fallback = std::nullopt);
// A boolean setting of a config object; `fallback` when absent or not a boolean (transformers
// ignores such values too).
bool ConfigBool(const Json& config, const char* key, bool fallback);

// The object's "type" field.
absl::StatusOr<std::string> GetType(const Json& obj, std::string_view where);

// The items of a Sequence component's array field `key`, each built by `make(item)`.
template <typename T, typename Make>
absl::StatusOr<std::vector<std::unique_ptr<T>>> ParseSequence(const Json& json, const char* key,
                                                              std::string_view where, Make make) {
  const auto list = json.find(key);
  if (list == json.end() || !list->is_array()) {
    return JsonError(where, std::string("Sequence needs a \"") + key + "\" array");
  }
  std::vector<std::unique_ptr<T>> steps;
  for (const Json& item : *list) {
    absl::StatusOr<std::unique_ptr<T>> step = make(item);
    if (!step.ok()) return step.status();
    steps.push_back(std::move(*step));
  }
  return steps;
}

}  // namespace quantd::tokenizer

#endif  // QUANTD_TOKENIZER_JSON_UTIL_H_
