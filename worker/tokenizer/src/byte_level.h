// GPT-2's byte-level alphabet: every byte maps to one printable code point, so byte strings can be
// vocabulary strings. Bytes 33-126, 161-172 and 174-255 map to themselves; the rest, in order, to
// U+0100 onwards.
#ifndef QUANTD_TOKENIZER_BYTE_LEVEL_H_
#define QUANTD_TOKENIZER_BYTE_LEVEL_H_

#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace quantd::tokenizer {

// The UTF-8 of the code point each byte maps to.
const std::array<std::string, 256>& ByteLevelAlphabet();

// Appends the byte-level form of `bytes` to `out`.
void AppendByteLevel(std::string_view bytes, std::string& out);

// The byte a code point of the alphabet stands for.
std::optional<unsigned char> ByteLevelByte(char32_t c);

}  // namespace quantd::tokenizer

#endif  // QUANTD_TOKENIZER_BYTE_LEVEL_H_
