// ASSIGN_OR_RETURN / RETURN_IF_ERROR for absl::Status(Or) inside the engine's I/O code.
#ifndef QUANTD_ENGINE_IO_STATUS_MACROS_H_
#define QUANTD_ENGINE_IO_STATUS_MACROS_H_

#include <utility>

#define QUANTD_IO_CONCAT_INNER(a, b) a##b
#define QUANTD_IO_CONCAT(a, b) QUANTD_IO_CONCAT_INNER(a, b)
#define QUANTD_IO_ASSIGN_OR_RETURN_IMPL(var, lhs, expr) \
  auto var = (expr);                                    \
  if (!var.ok()) return var.status();                   \
  lhs = std::move(*var)

// lhs = value of `expr` (an absl::StatusOr), or return its error.
#define QUANTD_ASSIGN_OR_RETURN(lhs, expr) \
  QUANTD_IO_ASSIGN_OR_RETURN_IMPL(QUANTD_IO_CONCAT(quantd_status_or_, __LINE__), lhs, expr)

// Returns the error of `expr` (an absl::Status).
#define QUANTD_RETURN_IF_ERROR(expr)                 \
  do {                                               \
    absl::Status quantd_status_ = (expr);            \
    if (!quantd_status_.ok()) return quantd_status_; \
  } while (0)

#endif  // QUANTD_ENGINE_IO_STATUS_MACROS_H_
