#include "bounded_text.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace quantd::server {
namespace {

// Length of the valid UTF-8 sequence at `text[i]`, or 0.
size_t SequenceLength(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) return 1;
  size_t n;
  uint32_t code;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
    code = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    code = c & 0x0f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    code = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > text.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xc0) != 0x80) return 0;
    code = (code << 6) | (byte(i + k) & 0x3f);
  }
  if ((n == 3 && code < 0x800) || (n == 4 && code < 0x10000) || code > 0x10ffff ||
      (code >= 0xd800 && code <= 0xdfff)) {
    return 0;
  }
  return n;
}

}  // namespace

size_t FirstInvalidUtf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const size_t n = SequenceLength(text, i);
    if (n == 0) return i;
    i += n;
  }
  return std::string_view::npos;
}

std::string Quoted(std::string_view value, size_t max_bytes) {
  std::string out = "\"";
  size_t i = 0;
  while (i < value.size() && i < max_bytes) {
    const size_t n = SequenceLength(value, i);
    const unsigned char c = static_cast<unsigned char>(value[i]);
    if (n == 0 || c < 0x20 || c == 0x7f) {
      absl::StrAppendFormat(&out, "\\x%02x", c);
      ++i;
    } else {
      if (c == '"' || c == '\\') out.push_back('\\');
      out.append(value.substr(i, n));
      i += n;
    }
  }
  out.push_back('"');
  if (i < value.size()) absl::StrAppend(&out, "... (", value.size(), " bytes)");
  return out;
}

}  // namespace quantd::server
