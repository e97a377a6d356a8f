#include "metrics/names.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace quantd::metrics {
namespace {

bool IsLetterOrUnderscore(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Length of the UTF-8 sequence starting at `s[i]`, or 0 when it is not well formed.
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  unsigned char lead = static_cast<unsigned char>(s[i]);
  size_t length;
  unsigned min_code_point;
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0) {
    length = 2;
    min_code_point = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3;
    min_code_point = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4;
    min_code_point = 0x10000;
  } else {
    return 0;
  }
  if (i + length > s.size()) return 0;
  unsigned code_point = lead & (0x7F >> length);
  for (size_t k = 1; k < length; ++k) {
    unsigned char c = static_cast<unsigned char>(s[i + k]);
    if ((c & 0xC0) != 0x80) return 0;
    code_point = (code_point << 6) | (c & 0x3F);
  }
  bool surrogate = code_point >= 0xD800 && code_point <= 0xDFFF;
  if (code_point < min_code_point || code_point > 0x10FFFF || surrogate) return 0;
  return length;
}

}  // namespace

absl::Status ValidateMetricName(std::string_view name) {
  bool ok = !name.empty() && (IsLetterOrUnderscore(name[0]) || name[0] == ':');
  for (size_t i = 1; ok && i < name.size(); ++i) {
    ok = IsLetterOrUnderscore(name[i]) || IsDigit(name[i]) || name[i] == ':';
  }
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat("invalid metric name \"", std::string(name),
                                                   "\": expected [a-zA-Z_:][a-zA-Z0-9_:]*"));
  }
  return absl::OkStatus();
}

absl::Status ValidateLabelName(std::string_view name) {
  bool ok = !name.empty() && IsLetterOrUnderscore(name[0]);
  for (size_t i = 1; ok && i < name.size(); ++i) {
    ok = IsLetterOrUnderscore(name[i]) || IsDigit(name[i]);
  }
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat("invalid label name \"", std::string(name),
                                                   "\": expected [a-zA-Z_][a-zA-Z0-9_]*"));
  }
  if (name.substr(0, 2) == "__") {
    return absl::InvalidArgumentError(absl::StrCat("invalid label name \"", std::string(name),
                                                   "\": names starting with __ are reserved"));
  }
  return absl::OkStatus();
}

absl::Status ValidateLabelValue(std::string_view label_name, std::string_view value) {
  for (size_t i = 0; i < value.size();) {
    size_t length = Utf8SequenceLength(value, i);
    if (length == 0) {
      return absl::InvalidArgumentError(absl::StrCat("value of label \"", std::string(label_name),
                                                     "\" is not valid UTF-8 (byte ", i, ")"));
    }
    i += length;
  }
  return absl::OkStatus();
}

}  // namespace quantd::metrics
