#include "lexer.h"

#include <cctype>
#include <cstdlib>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "errors.h"
#include "utf8.h"

namespace quantd::chat_template {
namespace {

// Jinja2 normalises newlines to "\n" and drops one trailing newline (keep_trailing_newline=False).
std::string NormalizeSource(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out.push_back(source[i]);
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// Python's str.rstrip() / lstrip() with no argument.
std::string RStripSpace(const std::string& s) {
  std::vector<char32_t> cps = DecodeUtf8(s);
  while (!cps.empty() && IsPythonSpace(cps.back())) cps.pop_back();
  return EncodeUtf8(cps);
}
size_t LeadingSpaceBytes(std::string_view s) {
  std::vector<char32_t> cps = DecodeUtf8(s);
  size_t bytes = 0;
  for (char32_t cp : cps) {
    if (!IsPythonSpace(cp)) break;
    std::string enc;
    AppendUtf8(cp, &enc);
    bytes += enc.size();
  }
  return bytes;
}

bool IsNameStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool IsNameChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

class Lexer {
 public:
  explicit Lexer(std::string source) : src_(std::move(source)) {}

  absl::StatusOr<std::vector<Token>> Run() {
    size_t pos = 0;
    // Set by the previous tag: strip all leading whitespace ('-') or one newline (trim_blocks).
    enum class Lead { kNone, kAllSpace, kOneNewline } lead = Lead::kNone;
    while (pos <= src_.size()) {
      size_t open = FindTagOpen(pos);
      size_t text_end = open == std::string::npos ? src_.size() : open;
      std::string text = src_.substr(pos, text_end - pos);
      size_t text_start = pos;
      if (lead == Lead::kAllSpace) {
        size_t n = LeadingSpaceBytes(text);
        text.erase(0, n);
        text_start += n;
      } else if (lead == Lead::kOneNewline && !text.empty() && text[0] == '\n') {
        text.erase(0, 1);
        text_start += 1;
      }
      if (open == std::string::npos) {
        Emit(Token::Type::kText, text, text_start);
        break;
      }
      char kind = src_[open + 1];  // '{', '%' or '#'.
      char sign = open + 2 < src_.size() ? src_[open + 2] : '\0';
      if (sign == '-') {
        text = RStripSpace(text);
      } else if (sign != '+' && kind != '{') {
        // lstrip_blocks: drop spaces between the line start and a block or comment tag.
        size_t line_start = text.rfind('\n');
        line_start = line_start == std::string::npos ? 0 : line_start + 1;
        bool at_line_start = line_start > 0 || text_start == 0 || src_[text_start - 1] == '\n';
        if (at_line_start && line_start < text.size()) {
          bool only_space = true;
          for (size_t i = line_start; i < text.size(); ++i) {
            if (text[i] != ' ' && text[i] != '\t' && text[i] != '\f' && text[i] != '\v' &&
                text[i] != '\r') {
              only_space = false;
              break;
            }
          }
          if (only_space) text.erase(line_start);
        }
      }
      Emit(Token::Type::kText, text, text_start);
      size_t body = open + 2 + ((sign == '-' || sign == '+') ? 1 : 0);
      char end_sign = '\0';
      size_t after = 0;
      if (kind == '#') {
        size_t close = src_.find("#}", body);
        if (close == std::string::npos) {
          return SyntaxError(LineAt(open), "unclosed comment: missing '#}'");
        }
        if (close > body && (src_[close - 1] == '-' || src_[close - 1] == '+')) {
          end_sign = src_[close - 1];
        }
        after = close + 2;
      } else {
        bool is_var = kind == '{';
        tokens_.push_back({is_var ? Token::Type::kVarBegin : Token::Type::kBlockBegin,
                           is_var ? "{{" : "{%", LineAt(open)});
        auto end = LexExpression(body, is_var ? '}' : '%', &end_sign);
        if (!end.ok()) return end.status();
        tokens_.push_back({is_var ? Token::Type::kVarEnd : Token::Type::kBlockEnd,
                           is_var ? "}}" : "%}", LineAt(*end)});
        after = *end + 2 + (end_sign != '\0' ? 1 : 0);
      }
      if (end_sign == '-') {
        lead = Lead::kAllSpace;
      } else if (end_sign != '+' && kind != '{') {
        lead = Lead::kOneNewline;  // trim_blocks
      } else {
        lead = Lead::kNone;
      }
      pos = after;
    }
    tokens_.push_back({Token::Type::kEof, "", LineAt(src_.size())});
    return std::move(tokens_);
  }

 private:
  size_t FindTagOpen(size_t pos) const {
    while (true) {
      size_t p = src_.find('{', pos);
      if (p == std::string::npos || p + 1 >= src_.size()) return std::string::npos;
      char c = src_[p + 1];
      if (c == '{' || c == '%' || c == '#') return p;
      pos = p + 1;
    }
  }

  int LineAt(size_t pos) {
    while (line_pos_ < pos && line_pos_ < src_.size()) {
      if (src_[line_pos_] == '\n') ++line_;
      ++line_pos_;
    }
    return line_;
  }

  void Emit(Token::Type type, const std::string& text, size_t pos) {
    if (type == Token::Type::kText && text.empty()) return;
    tokens_.push_back({type, text, LineAt(pos)});
  }

  // Lexes expression tokens from `pos` up to the closing "}}" or "%}" and returns the position of
  // that closing pair (after any '-'/'+' sign, which goes to *sign).
  absl::StatusOr<size_t> LexExpression(size_t pos, char closer, char* sign) {
    const int open_line = LineAt(pos);
    while (true) {
      while (pos < src_.size() && std::isspace(static_cast<unsigned char>(src_[pos]))) ++pos;
      if (pos >= src_.size()) {
        return SyntaxError(open_line,
                           absl::StrCat("unclosed tag: missing '", std::string(1, closer), "}'"));
      }
      char c = src_[pos];
      auto closes_at = [&](size_t p) {
        return p + 1 < src_.size() && src_[p] == closer && src_[p + 1] == '}';
      };
      if ((c == '-' || c == '+') && closes_at(pos + 1)) {
        *sign = c;
        return pos;
      }
      if (closes_at(pos)) {
        *sign = '\0';
        return pos;
      }
      int line = LineAt(pos);
      if (IsNameStart(c)) {
        size_t end = pos;
        while (end < src_.size() && IsNameChar(src_[end])) ++end;
        tokens_.push_back({Token::Type::kName, src_.substr(pos, end - pos), line});
        pos = end;
      } else if (IsDigit(c)) {
        size_t end = pos;
        bool is_float = false;
        while (end < src_.size() && (IsDigit(src_[end]) || src_[end] == '_')) ++end;
        if (end + 1 < src_.size() && src_[end] == '.' && IsDigit(src_[end + 1])) {
          is_float = true;
          ++end;
          while (end < src_.size() && (IsDigit(src_[end]) || src_[end] == '_')) ++end;
        }
        if (end < src_.size() && (src_[end] == 'e' || src_[end] == 'E')) {
          size_t e = end + 1;
          if (e < src_.size() && (src_[e] == '+' || src_[e] == '-')) ++e;
          if (e < src_.size() && IsDigit(src_[e])) {
            is_float = true;
            end = e;
            while (end < src_.size() && IsDigit(src_[end])) ++end;
          }
        }
        std::string spelled;
        for (size_t i = pos; i < end; ++i) {
          if (src_[i] != '_') spelled.push_back(src_[i]);
        }
        tokens_.push_back({is_float ? Token::Type::kFloat : Token::Type::kInt, spelled, line});
        pos = end;
      } else if (c == '\'' || c == '"') {
        auto s = LexString(&pos, line);
        if (!s.ok()) return s.status();
        tokens_.push_back({Token::Type::kString, *std::move(s), line});
      } else {
        static const char* const kOps[] = {"//", "**", "==", "!=", ">=", "<=", "+", "-", "*",
                                           "/",  "%",  "~",  "<",  ">",  "=",  "(", ")", "[",
                                           "]",  "{",  "}",  ",",  ".",  ":",  "|"};
        bool matched = false;
        for (const char* op : kOps) {
          size_t n = std::char_traits<char>::length(op);
          if (src_.compare(pos, n, op) == 0) {
            tokens_.push_back({Token::Type::kOperator, op, line});
            pos += n;
            matched = true;
            break;
          }
        }
        if (!matched) {
          return SyntaxError(line, absl::StrCat("unexpected character '", std::string(1, c), "'"));
        }
      }
    }
  }

  // Decodes a quoted literal with Python's escapes (Jinja2 uses unicode-escape).
  absl::StatusOr<std::string> LexString(size_t* pos, int line) {
    char quote = src_[*pos];
    size_t p = *pos + 1;
    std::string out;
    while (true) {
      if (p >= src_.size()) return SyntaxError(line, "unterminated string literal");
      char c = src_[p];
      if (c == quote) break;
      if (c != '\\') {
        out.push_back(c);
        ++p;
        continue;
      }
      if (p + 1 >= src_.size()) return SyntaxError(line, "unterminated string literal");
      char e = src_[p + 1];
      p += 2;
      switch (e) {
        case 'n':
          out.push_back('\n');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 'a':
          out.push_back('\a');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'v':
          out.push_back('\v');
          break;
        case '0':
          out.push_back('\0');
          break;
        case '\\':
          out.push_back('\\');
          break;
        case '\'':
          out.push_back('\'');
          break;
        case '"':
          out.push_back('"');
          break;
        case '\n':
          break;  // Line continuation.
        case 'x':
        case 'u':
        case 'U': {
          size_t digits = e == 'x' ? 2 : (e == 'u' ? 4 : 8);
          if (p + digits > src_.size()) return SyntaxError(line, "truncated \\x/\\u escape");
          std::string hex = src_.substr(p, digits);
          char* end = nullptr;
          unsigned long cp = std::strtoul(hex.c_str(), &end, 16);
          if (end != hex.c_str() + digits) return SyntaxError(line, "malformed \\x/\\u escape");
          AppendUtf8(static_cast<char32_t>(cp), &out);
          p += digits;
          break;
        }
        default:  // Unknown escapes keep their backslash, as in Python.
          out.push_back('\\');
          out.push_back(e);
      }
    }
    *pos = p + 1;
    return out;
  }

  std::string src_;
  std::vector<Token> tokens_;
  size_t line_pos_ = 0;
  int line_ = 1;
};

}  // namespace

absl::StatusOr<std::vector<Token>> Tokenize(std::string_view source) {
  Lexer lexer(NormalizeSource(source));
  return lexer.Run();
}

}  // namespace quantd::chat_template
