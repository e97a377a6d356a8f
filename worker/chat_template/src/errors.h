// Error construction shared by the lexer, parser and renderer: every template error names the
// template line, so a user can find the construct.
#ifndef QUANTD_WORKER_CHAT_TEMPLATE_SRC_ERRORS_H_
#define QUANTD_WORKER_CHAT_TEMPLATE_SRC_ERRORS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace quantd::chat_template {

inline absl::Status SyntaxError(int line, const std::string& message) {
  return absl::InvalidArgumentError(absl::StrCat("chat template line ", line, ": ", message));
}

// Adds the line to an error raised without one (e.g. by a filter); keeps messages that have one.
inline absl::Status AtLine(int line, const absl::Status& status) {
  if (status.ok()) return status;
  std::string message(status.message());
  if (message.rfind("chat template line ", 0) == 0) return status;
  return absl::Status(status.code(), absl::StrCat("chat template line ", line, ": ", message));
}

}  // namespace quantd::chat_template

// Propagates an error from a StatusOr-returning call into the enclosing StatusOr/Status function.
#define QCT_ASSIGN(lhs, expr)                   \
  auto lhs##_or = (expr);                       \
  if (!lhs##_or.ok()) return lhs##_or.status(); \
  auto lhs = std::move(*lhs##_or)

#define QCT_RETURN_IF_ERROR(expr)            \
  do {                                       \
    absl::Status qct_status = (expr);        \
    if (!qct_status.ok()) return qct_status; \
  } while (0)

#endif  // QUANTD_WORKER_CHAT_TEMPLATE_SRC_ERRORS_H_
