#include "calib/python_strip.h"

#include <cstdint>

namespace quantd::engine {
namespace {

bool IsPythonSpace(uint32_t c) {
  return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f ||
         c == 0x205f || c == 0x3000;
}

// Decodes the code point starting at `i` (0 with length 1 when the byte is not valid UTF-8 lead,
// which is never whitespace).
uint32_t DecodeAt(std::string_view s, size_t i, size_t* length) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = b(i);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (n == 0 || i + n > s.size()) {
    *length = 1;
    return n == 1 ? c : 0xfffd;
  }
  uint32_t cp = n == 1 ? c : c & (0x7f >> n);
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xc0) != 0x80) {
      *length = 1;
      return 0xfffd;
    }
    cp = (cp << 6) | (b(i + k) & 0x3f);
  }
  *length = n;
  return cp;
}

}  // namespace

std::string_view PythonStrip(std::string_view text) {
  size_t begin = 0;
  while (begin < text.size()) {
    size_t n;
    if (!IsPythonSpace(DecodeAt(text, begin, &n))) break;
    begin += n;
  }
  size_t end = text.size();
  while (end > begin) {
    // Step back to the start of the last code point (at most 4 bytes).
    size_t start = end - 1;
    while (start > begin && end - start < 4 &&
           (static_cast<unsigned char>(text[start]) & 0xc0) == 0x80) {
      --start;
    }
    size_t n;
    uint32_t cp = DecodeAt(text, start, &n);
    if (start + n != end || !IsPythonSpace(cp)) break;
    end = start;
  }
  return text.substr(begin, end - begin);
}

}  // namespace quantd::engine
