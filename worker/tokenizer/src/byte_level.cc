#include "byte_level.h"

#include "utf8.h"

namespace quantd::tokenizer {
namespace {

std::array<char32_t, 256> MakeCodePoints() {
  std::array<char32_t, 256> cps{};
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
    cps[b] = printable ? static_cast<char32_t>(b) : next++;
  }
  return cps;
}

const std::array<char32_t, 256>& CodePoints() {
  static const std::array<char32_t, 256> cps = MakeCodePoints();
  return cps;
}

}  // namespace

const std::array<std::string, 256>& ByteLevelAlphabet() {
  static const std::array<std::string, 256> alphabet = [] {
    std::array<std::string, 256> a;
    for (int b = 0; b < 256; ++b) AppendUtf8(CodePoints()[b], a[b]);
    return a;
  }();
  return alphabet;
}

void AppendByteLevel(std::string_view bytes, std::string& out) {
  const auto& alphabet = ByteLevelAlphabet();
  for (char c : bytes) out += alphabet[static_cast<unsigned char>(c)];
}

std::optional<unsigned char> ByteLevelByte(char32_t c) {
  // Code points 256-323 are the remapped bytes; others map to themselves when printable.
  static const std::array<int, 324> inverse = [] {
    std::array<int, 324> inv;
    inv.fill(-1);
    for (int b = 0; b < 256; ++b) inv[CodePoints()[b]] = b;
    return inv;
  }();
  if (c >= inverse.size() || inverse[c] < 0) return std::nullopt;
  return static_cast<unsigned char>(inverse[c]);
}

}  // namespace quantd::tokenizer
