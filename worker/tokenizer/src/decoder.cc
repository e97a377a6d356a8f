#include "decoder.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "byte_level.h"
#include "replace.h"
#include "utf8.h"

namespace quantd::tokenizer {
namespace {

std::vector<char32_t> CodePoints(std::string_view s) {
  std::vector<char32_t> out;
  for (size_t i = 0; i < s.size();) out.push_back(NextCodePoint(s, i));
  return out;
}

class ByteLevelDecoder : public Decoder {
 public:
  void DecodeChain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const std::string& token : tokens) {
      const size_t start = bytes.size();
      bool mapped = true;
      for (size_t i = 0; i < token.size() && mapped;) {
        const std::optional<unsigned char> b = ByteLevelByte(NextCodePoint(token, i));
        if (b) {
          bytes.push_back(static_cast<char>(*b));
        } else {
          mapped = false;
        }
      }
      if (!mapped) {  // not all in the alphabet: the token's own bytes
        bytes.resize(start);
        bytes += token;
      }
    }
    tokens.assign(1, ReplaceInvalidUtf8(bytes));
  }
};

class MetaspaceDecoder : public Decoder {
 public:
  MetaspaceDecoder(char32_t replacement, bool strip_first)
      : replacement_(replacement), strip_first_(strip_first) {}
  void DecodeChain(std::vector<std::string>& tokens) const override {
    for (size_t t = 0; t < tokens.size(); ++t) {
      std::string out;
      for (char32_t c : CodePoints(tokens[t])) {
        if (c != replacement_) {
          AppendUtf8(c, out);
        } else if (t != 0 || !strip_first_) {
          out.push_back(' ');
        }
      }
      tokens[t] = std::move(out);
    }
  }

 private:
  char32_t replacement_;
  bool strip_first_;
};

class ReplaceDecoder : public Decoder {
 public:
  explicit ReplaceDecoder(Replacement replacement) : replacement_(std::move(replacement)) {}
  void DecodeChain(std::vector<std::string>& tokens) const override {
    for (std::string& token : tokens) replacement_.Apply(token);
  }

 private:
  Replacement replacement_;
};

class ByteFallbackDecoder : public Decoder {
 public:
  void DecodeChain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    std::string pending;  // bytes of consecutive <0xXX> tokens
    const auto flush = [&] {
      if (pending.empty()) return;
      if (IsValidUtf8(pending)) {
        out.push_back(pending);
      } else {
        for (size_t i = 0; i < pending.size(); ++i) out.emplace_back("\xEF\xBF\xBD");
      }
      pending.clear();
    };
    for (std::string& token : tokens) {
      int value = -1;
      if (token.size() == 6 && token.starts_with("<0x") && token.back() == '>') {
        value = HexByte(token[3], token[4]);
      }
      if (value >= 0) {
        pending.push_back(static_cast<char>(value));
      } else {
        flush();
        out.push_back(std::move(token));
      }
    }
    flush();
    tokens = std::move(out);
  }

 private:
  static int HexDigit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  static int HexByte(char hi, char lo) {
    const int h = HexDigit(hi), l = HexDigit(lo);
    return h < 0 || l < 0 ? -1 : h * 16 + l;
  }
};

class FuseDecoder : public Decoder {
 public:
  void DecodeChain(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const std::string& t : tokens) all += t;
    tokens.assign(1, std::move(all));
  }
};

class StripDecoder : public Decoder {
 public:
  StripDecoder(char32_t content, size_t start, size_t stop)
      : content_(content), start_(start), stop_(stop) {}
  void DecodeChain(std::vector<std::string>& tokens) const override {
    for (std::string& token : tokens) {
      const std::vector<char32_t> chars = CodePoints(token);
      size_t begin = 0, end = chars.size();
      while (begin < std::min(start_, chars.size()) && chars[begin] == content_) ++begin;
      for (size_t k = 0; k < stop_ && end > begin && chars[end - 1] == content_; ++k) --end;
      std::string out;
      for (size_t i = begin; i < end; ++i) AppendUtf8(chars[i], out);
      token = std::move(out);
    }
  }

 private:
  char32_t content_;
  size_t start_, stop_;
};

class BpeSuffixDecoder : public Decoder {
 public:
  explicit BpeSuffixDecoder(std::string suffix) : suffix_(std::move(suffix)) {}
  void DecodeChain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      tokens[i] = absl::StrReplaceAll(tokens[i], {{suffix_, i + 1 == tokens.size() ? "" : " "}});
    }
  }

 private:
  std::string suffix_;
};

class SequenceDecoder : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> steps)
      : steps_(std::move(steps)) {}
  void DecodeChain(std::vector<std::string>& tokens) const override {
    for (const auto& step : steps_) step->DecodeChain(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> steps_;
};

absl::StatusOr<char32_t> SingleChar(const Json& json, const char* key, const std::string& at,
                                    std::string fallback) {
  absl::StatusOr<std::string> s = GetString(json, key, at, std::move(fallback));
  if (!s.ok()) return s.status();
  const std::vector<char32_t> chars = CodePoints(*s);
  if (chars.size() != 1) return JsonError(at, absl::StrCat("\"", key, "\" must be one character"));
  return chars[0];
}

}  // namespace

std::unique_ptr<Decoder> MakeByteLevelDecoder() { return std::make_unique<ByteLevelDecoder>(); }

absl::StatusOr<std::unique_ptr<Decoder>> DecoderFromJson(const Json& json, std::string_view where) {
  const std::string at = absl::StrCat(std::string(where), ": decoder");
  absl::StatusOr<std::string> type = GetType(json, at);
  if (!type.ok()) return type.status();
  if (*type == "ByteLevel") return MakeByteLevelDecoder();
  if (*type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (*type == "Fuse") return std::make_unique<FuseDecoder>();
  if (*type == "Metaspace") {
    absl::StatusOr<char32_t> replacement = SingleChar(json, "replacement", at, "\xE2\x96\x81");
    if (!replacement.ok()) return replacement.status();
    absl::StatusOr<bool> add_prefix_space = GetBool(json, "add_prefix_space", at, true);
    if (!add_prefix_space.ok()) return add_prefix_space.status();
    absl::StatusOr<std::string> scheme =
        GetString(json, "prepend_scheme", at, *add_prefix_space ? "always" : "never");
    if (!scheme.ok()) return scheme.status();
    return std::make_unique<MetaspaceDecoder>(*replacement, *scheme != "never");
  }
  if (*type == "Strip") {
    absl::StatusOr<char32_t> content = SingleChar(json, "content", at, " ");
    absl::StatusOr<int64_t> start = GetInt(json, "start", at, 0);
    absl::StatusOr<int64_t> stop = GetInt(json, "stop", at, 0);
    if (!content.ok()) return content.status();
    if (!start.ok()) return start.status();
    if (!stop.ok()) return stop.status();
    if (*start < 0 || *stop < 0) return JsonError(at, "Strip start/stop must not be negative");
    return std::make_unique<StripDecoder>(*content, static_cast<size_t>(*start),
                                          static_cast<size_t>(*stop));
  }
  if (*type == "BPEDecoder") {
    absl::StatusOr<std::string> suffix = GetString(json, "suffix", at, "</w>");
    if (!suffix.ok()) return suffix.status();
    return std::make_unique<BpeSuffixDecoder>(*suffix);
  }
  if (*type == "Replace") {
    absl::StatusOr<Replacement> replacement = Replacement::FromJson(json, at);
    if (!replacement.ok()) return replacement.status();
    return std::make_unique<ReplaceDecoder>(std::move(*replacement));
  }
  if (*type == "Sequence") {
    auto steps = ParseSequence<Decoder>(
        json, "decoders", at, [&](const Json& item) { return DecoderFromJson(item, where); });
    if (!steps.ok()) return steps.status();
    return std::make_unique<SequenceDecoder>(std::move(*steps));
  }
  return JsonError(at, absl::StrCat("unsupported decoder type \"", *type, "\""));
}

}  // namespace quantd::tokenizer
