// Lexer: turns template source into tokens the way Jinja2's lexer does under transformers'
// settings (trim_blocks, lstrip_blocks, keep_trailing_newline off), including '-' and '+'
// whitespace control. Comments vanish here.
#ifndef QUANTD_WORKER_CHAT_TEMPLATE_SRC_LEXER_H_
#define QUANTD_WORKER_CHAT_TEMPLATE_SRC_LEXER_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace quantd::chat_template {

struct Token {
  enum class Type {
    kText,
    kVarBegin,
    kVarEnd,
    kBlockBegin,
    kBlockEnd,
    kName,
    kString,
    kInt,
    kFloat,
    kOperator,
    kEof
  };
  Type type;
  std::string value;  // Text, name, decoded string literal, number spelling or operator.
  int line;
};

// Errors are InvalidArgument "chat template line N: ...".
absl::StatusOr<std::vector<Token>> Tokenize(std::string_view source);

}  // namespace quantd::chat_template

#endif  // QUANTD_WORKER_CHAT_TEMPLATE_SRC_LEXER_H_
