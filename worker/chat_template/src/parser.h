// Parser: tokens -> syntax tree, with Jinja2's operator precedence. Constructs outside the
// supported subset (unknown tags, filters, tests, *args) are rejected here, naming the construct
// and the line, so a template either parses completely or not at all.
#ifndef QUANTD_WORKER_CHAT_TEMPLATE_SRC_PARSER_H_
#define QUANTD_WORKER_CHAT_TEMPLATE_SRC_PARSER_H_

#include <vector>

#include "absl/status/statusor.h"
#include "ast.h"
#include "lexer.h"

namespace quantd::chat_template {

absl::StatusOr<NodeList> ParseTemplate(const std::vector<Token>& tokens);

}  // namespace quantd::chat_template

#endif  // QUANTD_WORKER_CHAT_TEMPLATE_SRC_PARSER_H_
