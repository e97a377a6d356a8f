// Split patterns of tokenizer.json, run by PCRE2 (UTF + UCP, JIT-compiled) with the character
// classes the reference (Oniguruma / Rust regex in Unicode mode) gives them.
#ifndef QUANTD_TOKENIZER_REGEX_H_
#define QUANTD_TOKENIZER_REGEX_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace quantd::tokenizer {

class Regex {
 public:
  // Compiles a pattern written for the reference engine. \s and \S mean the Unicode White_Space
  // property, \w Rust's Unicode word class, \d \p{Nd}.
  static absl::StatusOr<std::unique_ptr<Regex>> Compile(std::string_view pattern);
  // A pattern that matches `literal` exactly.
  static std::string Escape(std::string_view literal);

  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Calls on_match(start, end) for each successive non-overlapping match in `text` (valid UTF-8),
  // leftmost-first; after an empty match the search resumes one character further.
  void ForEachMatch(std::string_view text,
                    const std::function<void(size_t, size_t)>& on_match) const;

 private:
  explicit Regex(void* code, bool jit) : code_(code), jit_(jit) {}
  void* code_;  // pcre2_code_8
  bool jit_;
};

}  // namespace quantd::tokenizer

#endif  // QUANTD_TOKENIZER_REGEX_H_
