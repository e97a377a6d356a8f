#include "normalizer.h"

#include <utf8proc.h>

#include <cstdlib>
#include <vector>

#include "absl/strings/str_cat.h"
#include "replace.h"
#include "unicode_class.h"
#include "utf8.h"

namespace quantd::tokenizer {
namespace {

bool IsAscii(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

// Normal forms through utf8proc. Only the stretches around non-ASCII text go through it: a
// boundary just before an ASCII character is safe for every normal form (ASCII characters are
// unchanged starters, never the second half of a composition), and most text is ASCII.
class UnicodeNormalizer : public Normalizer {
 public:
  explicit UnicodeNormalizer(utf8proc_option_t options) : options_(options) {}
  void Normalize(std::string& text) const override {
    if (IsAscii(text)) return;
    std::string out;
    out.reserve(text.size() + 16);
    const auto ascii = [&](size_t k) { return static_cast<unsigned char>(text[k]) < 0x80; };
    for (size_t i = 0; i < text.size();) {
      size_t j = i;
      while (j < text.size() && ascii(j)) ++j;
      if (j == text.size()) {
        out.append(text, i, j - i);
        break;
      }
      // The ASCII character before a non-ASCII run may compose with it (e + U+0301).
      const size_t start = j > i ? j - 1 : j;
      out.append(text, i, start - i);
      size_t end = j;
      while (end < text.size() && !ascii(end)) ++end;
      AppendNormalized(std::string_view(text).substr(start, end - start), out);
      i = end;
    }
    text = std::move(out);
  }

 private:
  void AppendNormalized(std::string_view piece, std::string& out) const {
    utf8proc_uint8_t* mapped = nullptr;
    const utf8proc_ssize_t n =
        utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(piece.data()),
                     static_cast<utf8proc_ssize_t>(piece.size()), &mapped,
                     static_cast<utf8proc_option_t>(options_ | UTF8PROC_STABLE));
    if (n >= 0) {
      out.append(reinterpret_cast<const char*>(mapped), static_cast<size_t>(n));
    } else {
      out.append(piece);  // not reached for valid UTF-8
    }
    std::free(mapped);
  }

  utf8proc_option_t options_;
};

class LowercaseNormalizer : public Normalizer {
 public:
  void Normalize(std::string& text) const override {
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size();) {
      const char32_t c = NextCodePoint(text, i);
      if (c == 0x130) {  // İ lowercases to i + combining dot above (full case mapping)
        out.append("i\xCC\x87");
        continue;
      }
      AppendUtf8(static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))), out);
    }
    text = std::move(out);
  }
};

class PrependNormalizer : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  void Normalize(std::string& text) const override {
    if (!text.empty()) text.insert(0, prefix_);
  }

 private:
  std::string prefix_;
};

class ReplaceNormalizer : public Normalizer {
 public:
  explicit ReplaceNormalizer(Replacement replacement) : replacement_(std::move(replacement)) {}
  void Normalize(std::string& text) const override { replacement_.Apply(text); }

 private:
  Replacement replacement_;
};

class StripNormalizer : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  void Normalize(std::string& text) const override {
    size_t begin = 0, end = text.size();
    if (left_) {
      while (begin < end) {
        size_t next = begin;
        if (!IsWhiteSpace(NextCodePoint(text, next))) break;
        begin = next;
      }
    }
    if (right_) {
      while (end > begin) {
        size_t start = end - 1;
        while (start > begin && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
        size_t next = start;
        if (!IsWhiteSpace(NextCodePoint(text, next))) break;
        end = start;
      }
    }
    text = text.substr(begin, end - begin);
  }

 private:
  bool left_, right_;
};

class StripAccentsNormalizer : public Normalizer {
 public:
  void Normalize(std::string& text) const override {
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size();) {
      const size_t start = i;
      const char32_t c = NextCodePoint(text, i);
      // Combining marks: Mn, Mc and Me (as unicode-normalization's is_combining_mark).
      const auto category = utf8proc_category(static_cast<utf8proc_int32_t>(c));
      if (category != UTF8PROC_CATEGORY_MN && category != UTF8PROC_CATEGORY_MC &&
          category != UTF8PROC_CATEGORY_ME) {
        out.append(text, start, i - start);
      }
    }
    text = std::move(out);
  }
};

class SequenceNormalizer : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> steps)
      : steps_(std::move(steps)) {}
  void Normalize(std::string& text) const override {
    for (const auto& step : steps_) step->Normalize(text);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

}  // namespace

std::unique_ptr<Normalizer> MakeUnicodeNormalizer(std::string_view form) {
  if (form == "NFC") return std::make_unique<UnicodeNormalizer>(UTF8PROC_COMPOSE);
  if (form == "NFD") return std::make_unique<UnicodeNormalizer>(UTF8PROC_DECOMPOSE);
  if (form == "NFKC") {
    return std::make_unique<UnicodeNormalizer>(
        static_cast<utf8proc_option_t>(UTF8PROC_COMPOSE | UTF8PROC_COMPAT));
  }
  if (form == "NFKD") {
    return std::make_unique<UnicodeNormalizer>(
        static_cast<utf8proc_option_t>(UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT));
  }
  return nullptr;
}

absl::StatusOr<std::unique_ptr<Normalizer>> NormalizerFromJson(const Json& json,
                                                               std::string_view where) {
  const std::string at = absl::StrCat(std::string(where), ": normalizer");
  absl::StatusOr<std::string> type = GetType(json, at);
  if (!type.ok()) return type.status();
  if (auto unicode = MakeUnicodeNormalizer(*type)) return unicode;
  if (*type == "Lowercase") return std::make_unique<LowercaseNormalizer>();
  if (*type == "StripAccents") return std::make_unique<StripAccentsNormalizer>();
  if (*type == "Prepend") {
    absl::StatusOr<std::string> prepend = GetString(json, "prepend", at);
    if (!prepend.ok()) return prepend.status();
    return std::make_unique<PrependNormalizer>(*prepend);
  }
  if (*type == "Strip") {
    absl::StatusOr<bool> left = GetBool(json, "strip_left", at, true);
    absl::StatusOr<bool> right = GetBool(json, "strip_right", at, true);
    if (!left.ok()) return left.status();
    if (!right.ok()) return right.status();
    return std::make_unique<StripNormalizer>(*left, *right);
  }
  if (*type == "Replace") {
    absl::StatusOr<Replacement> replacement = Replacement::FromJson(json, at);
    if (!replacement.ok()) return replacement.status();
    return std::make_unique<ReplaceNormalizer>(std::move(*replacement));
  }
  if (*type == "Sequence") {
    auto steps = ParseSequence<Normalizer>(
        json, "normalizers", at, [&](const Json& item) { return NormalizerFromJson(item, where); });
    if (!steps.ok()) return steps.status();
    return std::make_unique<SequenceNormalizer>(std::move(*steps));
  }
  return JsonError(at, absl::StrCat("unsupported normalizer type \"", *type, "\""));
}

}  // namespace quantd::tokenizer
