#include "operators.h"

#include <cmath>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "access.h"
#include "errors.h"

namespace quantd::chat_template {
namespace {

absl::Status OperandError(const std::string& op, const Value& a, const Value& b) {
  if (a.is_undefined()) return absl::InvalidArgumentError(a.undefined_hint());
  if (b.is_undefined()) return absl::InvalidArgumentError(b.undefined_hint());
  return absl::InvalidArgumentError(absl::StrCat("unsupported operand type(s) for ", op, ": '",
                                                 a.TypeName(), "' and '", b.TypeName(), "'"));
}

// Python has unbounded integers and memory; we refuse results it would need them for.
constexpr size_t kMaxRepeatBytes = size_t{64} << 20;

absl::Status Overflow(const std::string& op) {
  return absl::InvalidArgumentError(
      absl::StrCat("integer overflow in '", op, "' (values beyond 64 bits are not supported)"));
}

absl::StatusOr<Value> Repeat(const Value& seq, int64_t times) {
  size_t unit = seq.is_string() ? seq.as_string().size() : seq.list().size() * 16;
  if (times > 0 && unit > 0 && static_cast<size_t>(times) > kMaxRepeatBytes / unit) {
    return absl::InvalidArgumentError("sequence repetition result too large");
  }
  if (seq.is_string()) {
    std::string out;
    for (int64_t i = 0; i < times; ++i) out += seq.as_string();
    return Value::String(out);
  }
  ValueList out;
  for (int64_t i = 0; i < times; ++i) out.insert(out.end(), seq.list().begin(), seq.list().end());
  return Value::List(std::move(out));
}

bool IsInteger(const Value& v) { return v.is_number() && !v.is_float(); }

}  // namespace

absl::StatusOr<Value> UnaryOp(const std::string& op, const Value& v) {
  if (v.is_undefined()) return absl::InvalidArgumentError(v.undefined_hint());
  if (!v.is_number()) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad operand type for unary ", op, ": '", v.TypeName(), "'"));
  }
  if (op == "+") return v.is_float() ? v : Value::Int(v.as_int());
  return v.is_float() ? Value::Float(-v.as_double()) : Value::Int(-v.as_int());
}

absl::StatusOr<Value> BinaryOp(const std::string& op, const Value& a, const Value& b) {
  if (op == "~") return Value::String(ToPythonStr(a) + ToPythonStr(b));
  if (op == "+") {
    if (a.is_string() && b.is_string()) return Value::String(a.as_string() + b.as_string());
    if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
      ValueList out = a.list();
      out.insert(out.end(), b.list().begin(), b.list().end());
      return a.is_tuple() ? Value::Tuple(std::move(out)) : Value::List(std::move(out));
    }
  }
  if (op == "*") {
    if ((a.is_string() || a.is_list()) && IsInteger(b)) return Repeat(a, b.as_int());
    if ((b.is_string() || b.is_list()) && IsInteger(a)) return Repeat(b, a.as_int());
  }
  if (op == "%" && a.is_string()) {
    return absl::InvalidArgumentError("unsupported construct: printf-style string formatting '%'");
  }
  if (!a.is_number() || !b.is_number()) return OperandError(op, a, b);
  const bool floating = a.is_float() || b.is_float();
  if (op == "/") {
    if (b.as_double() == 0) return absl::InvalidArgumentError("division by zero");
    return Value::Float(a.as_double() / b.as_double());
  }
  if (op == "**") {
    if (!floating && b.as_int() >= 0) {
      int64_t r = 1;
      for (int64_t i = 0; i < b.as_int(); ++i) {
        if (__builtin_mul_overflow(r, a.as_int(), &r)) return Overflow(op);
        if (r == 0 || r == 1) break;  // 0 and 1 stay put; also bounds the loop for huge powers.
      }
      return Value::Int(r);
    }
    return Value::Float(std::pow(a.as_double(), b.as_double()));
  }
  if (floating) {
    double x = a.as_double(), y = b.as_double();
    if (op == "+") return Value::Float(x + y);
    if (op == "-") return Value::Float(x - y);
    if (op == "*") return Value::Float(x * y);
    if (y == 0) return absl::InvalidArgumentError("float division by zero");
    if (op == "//") return Value::Float(std::floor(x / y));
    double m = std::fmod(x, y);
    if (m != 0 && ((m < 0) != (y < 0))) m += y;
    return Value::Float(m);
  }
  int64_t x = a.as_int(), y = b.as_int(), r = 0;
  if (op == "+") {
    if (__builtin_add_overflow(x, y, &r)) return Overflow(op);
    return Value::Int(r);
  }
  if (op == "-") {
    if (__builtin_sub_overflow(x, y, &r)) return Overflow(op);
    return Value::Int(r);
  }
  if (op == "*") {
    if (__builtin_mul_overflow(x, y, &r)) return Overflow(op);
    return Value::Int(r);
  }
  if (y == 0) return absl::InvalidArgumentError("integer division or modulo by zero");
  if (y == -1 && x == INT64_MIN) return Overflow(op);
  int64_t q = x / y;
  r = x % y;
  if (r != 0 && ((r < 0) != (y < 0))) {  // Python floors toward negative infinity.
    q -= 1;
    r += y;
  }
  if (op == "//") return Value::Int(q);
  return Value::Int(r);
}

absl::StatusOr<bool> CompareOp(const std::string& op, const Value& a, const Value& b) {
  if (op == "==") return PythonEquals(a, b);
  if (op == "!=") return !PythonEquals(a, b);
  if (op == "in" || op == "notin") {
    bool found = false;
    if (b.is_string()) {
      if (!a.is_string()) {
        return absl::InvalidArgumentError(
            absl::StrCat("'in <string>' requires string as left operand, not ", a.TypeName()));
      }
      found = b.as_string().find(a.as_string()) != std::string::npos;
    } else if (b.is_dict()) {
      found = a.is_string() && b.Find(a.as_string()) != nullptr;
    } else if (b.is_list()) {
      for (const Value& item : b.list()) {
        if (PythonEquals(item, a)) {
          found = true;
          break;
        }
      }
    } else if (!b.is_undefined()) {
      return absl::InvalidArgumentError(
          absl::StrCat("argument of type '", b.TypeName(), "' is not iterable"));
    }
    return op == "in" ? found : !found;
  }
  if (a.is_undefined()) return absl::InvalidArgumentError(a.undefined_hint());
  if (b.is_undefined()) return absl::InvalidArgumentError(b.undefined_hint());
  if (op == "<") return PythonLess(a, b);
  if (op == ">") return PythonLess(b, a);
  if (op == "<=") {
    QCT_ASSIGN(greater, PythonLess(b, a));
    return !greater;
  }
  QCT_ASSIGN(less, PythonLess(a, b));
  return !less;
}

}  // namespace quantd::chat_template
