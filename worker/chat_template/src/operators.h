// Python's arithmetic, concatenation and comparison operators on template values.
#ifndef QUANTD_WORKER_CHAT_TEMPLATE_SRC_OPERATORS_H_
#define QUANTD_WORKER_CHAT_TEMPLATE_SRC_OPERATORS_H_

#include <string>

#include "absl/status/statusor.h"
#include "value.h"

namespace quantd::chat_template {

// op is "-" or "+".
absl::StatusOr<Value> UnaryOp(const std::string& op, const Value& v);
// op is one of + - * / // % ** ~.
absl::StatusOr<Value> BinaryOp(const std::string& op, const Value& a, const Value& b);
// op is one of == != < > <= >= in notin.
absl::StatusOr<bool> CompareOp(const std::string& op, const Value& a, const Value& b);

}  // namespace quantd::chat_template

#endif  // QUANTD_WORKER_CHAT_TEMPLATE_SRC_OPERATORS_H_
