// UTF-8 helpers giving the engine Python's view of strings: sequences of code points.
#ifndef QUANTD_WORKER_CHAT_TEMPLATE_SRC_UTF8_H_
#define QUANTD_WORKER_CHAT_TEMPLATE_SRC_UTF8_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace quantd::chat_template {

// Invalid UTF-8 bytes decode to kEscapedByteBase + byte (lone surrogates U+DC80..U+DCFF, never
// produced by valid UTF-8, as Python's surrogateescape does) and encode back to the same byte.
inline constexpr char32_t kEscapedByteBase = 0xDC00;

// Decodes UTF-8 to code points; invalid bytes survive a decode/encode round trip unchanged.
std::vector<char32_t> DecodeUtf8(std::string_view s);
std::string EncodeUtf8(const std::vector<char32_t>& cps);
void AppendUtf8(char32_t cp, std::string* out);
// Number of code points (Python's len(str)).
int64_t Utf8Length(std::string_view s);

// Python's str.isspace() for one code point.
bool IsPythonSpace(char32_t cp);
// Python's str.isprintable() for one code point.
bool IsPythonPrintable(char32_t cp);
char32_t ToUpperCp(char32_t cp);
char32_t ToLowerCp(char32_t cp);
bool IsCased(char32_t cp);
bool IsAlnumCp(char32_t cp);

std::string Utf8Upper(std::string_view s);
std::string Utf8Lower(std::string_view s);

}  // namespace quantd::chat_template

#endif  // QUANTD_WORKER_CHAT_TEMPLATE_SRC_UTF8_H_
