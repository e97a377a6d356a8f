// UTF-8 helpers shared by the tokenizer stages.
#ifndef QUANTD_TOKENIZER_UTF8_H_
#define QUANTD_TOKENIZER_UTF8_H_

#include <cstddef>
#include <string>
#include <string_view>

namespace quantd::tokenizer {

// Number of bytes of the well-formed UTF-8 sequence that starts at s[i], or the length of its
// maximal ill-formed prefix (at least 1) negated when it is not well-formed.
int Utf8SequenceAt(std::string_view s, size_t i);

bool IsValidUtf8(std::string_view s);

// Replaces each maximal ill-formed subsequence by U+FFFD: what Python's
// bytes.decode("utf-8", errors="replace") and Rust's String::from_utf8_lossy give.
std::string ReplaceInvalidUtf8(std::string_view s);

// Length of a UTF-8 sequence from its lead byte (1 for bytes that cannot lead one).
inline size_t Utf8Length(unsigned char lead) {
  if (lead < 0xC0) return 1;
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  return 4;
}

// Decodes the code point at s[i] of valid UTF-8 and moves i past it.
char32_t NextCodePoint(std::string_view s, size_t& i);

void AppendUtf8(char32_t c, std::string& out);

}  // namespace quantd::tokenizer

#endif  // QUANTD_TOKENIZER_UTF8_H_
