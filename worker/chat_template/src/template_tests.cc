// Jinja2's tests (`x is defined`, `x is string`, `x is equalto y`, ...).
#include <map>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "access.h"
#include "errors.h"
#include "filters.h"
#include "utf8.h"

namespace quantd::chat_template {
namespace {

using TestFn = absl::StatusOr<bool> (*)(const Value&, const CallArgs&);

std::optional<Value> TestArg(const CallArgs& args) {
  if (!args.positional.empty()) return args.positional[0];
  return std::nullopt;
}

absl::StatusOr<bool> TestDefined(const Value& v, const CallArgs&) { return !v.is_undefined(); }
absl::StatusOr<bool> TestUndefined(const Value& v, const CallArgs&) { return v.is_undefined(); }
absl::StatusOr<bool> TestNone(const Value& v, const CallArgs&) { return v.is_none(); }
absl::StatusOr<bool> TestString(const Value& v, const CallArgs&) { return v.is_string(); }
absl::StatusOr<bool> TestNumber(const Value& v, const CallArgs&) { return v.is_number(); }
absl::StatusOr<bool> TestInteger(const Value& v, const CallArgs&) { return v.is_int(); }
absl::StatusOr<bool> TestFloat(const Value& v, const CallArgs&) { return v.is_float(); }
absl::StatusOr<bool> TestBoolean(const Value& v, const CallArgs&) { return v.is_bool(); }
absl::StatusOr<bool> TestMapping(const Value& v, const CallArgs&) { return v.is_dict(); }
absl::StatusOr<bool> TestSequence(const Value& v, const CallArgs&) {
  return v.is_string() || v.is_list() || v.is_dict() || v.is_undefined();
}
absl::StatusOr<bool> TestIterable(const Value& v, const CallArgs&) {
  return v.is_string() || v.is_list() || v.is_dict() || v.is_undefined();
}
absl::StatusOr<bool> TestCallable(const Value& v, const CallArgs&) { return v.is_callable(); }
absl::StatusOr<bool> TestTrue(const Value& v, const CallArgs&) {
  return v.is_bool() && v.as_bool();
}
absl::StatusOr<bool> TestFalse(const Value& v, const CallArgs&) {
  return v.is_bool() && !v.as_bool();
}

absl::StatusOr<bool> Compare(const Value& v, const CallArgs& args, const char* op) {
  std::optional<Value> other = TestArg(args);
  if (!other) return absl::InvalidArgumentError(absl::StrCat("test '", op, "' needs an argument"));
  std::string o = op;
  if (o == "==") return PythonEquals(v, *other);
  if (o == "!=") return !PythonEquals(v, *other);
  if (o == "<") return PythonLess(v, *other);
  if (o == ">") return PythonLess(*other, v);
  QCT_ASSIGN(greater, PythonLess(o == "<=" ? *other : v, o == "<=" ? v : *other));
  return !greater;
}
absl::StatusOr<bool> TestEq(const Value& v, const CallArgs& a) { return Compare(v, a, "=="); }
// `sameas` is Python's `is`: identity for None/True/False, equality of value otherwise (our
// values have no identity beyond that).
absl::StatusOr<bool> TestSameAs(const Value& v, const CallArgs& args) {
  std::optional<Value> other = TestArg(args);
  if (!other) return absl::InvalidArgumentError("test 'sameas' needs an argument");
  if (v.kind() != other->kind()) return false;
  return PythonEquals(v, *other);
}
absl::StatusOr<bool> TestNe(const Value& v, const CallArgs& a) { return Compare(v, a, "!="); }
absl::StatusOr<bool> TestLt(const Value& v, const CallArgs& a) { return Compare(v, a, "<"); }
absl::StatusOr<bool> TestLe(const Value& v, const CallArgs& a) { return Compare(v, a, "<="); }
absl::StatusOr<bool> TestGt(const Value& v, const CallArgs& a) { return Compare(v, a, ">"); }
absl::StatusOr<bool> TestGe(const Value& v, const CallArgs& a) { return Compare(v, a, ">="); }

absl::StatusOr<bool> TestIn(const Value& v, const CallArgs& args) {
  std::optional<Value> seq = TestArg(args);
  if (!seq) return absl::InvalidArgumentError("test 'in' needs an argument");
  if (seq->is_string() && v.is_string()) {
    return seq->as_string().find(v.as_string()) != std::string::npos;
  }
  QCT_ASSIGN(items, Iterate(*seq));
  for (const Value& item : items) {
    if (PythonEquals(item, v)) return true;
  }
  return false;
}

absl::StatusOr<bool> TestOddEven(const Value& v, bool odd) {
  if (!v.is_number() || v.is_float()) return absl::InvalidArgumentError("odd/even need an integer");
  int64_t r = v.as_int() % 2;
  return odd ? r != 0 : r == 0;
}
absl::StatusOr<bool> TestOdd(const Value& v, const CallArgs&) { return TestOddEven(v, true); }
absl::StatusOr<bool> TestEven(const Value& v, const CallArgs&) { return TestOddEven(v, false); }
absl::StatusOr<bool> TestDivisibleBy(const Value& v, const CallArgs& args) {
  std::optional<Value> d = TestArg(args);
  if (!d || !d->is_number() || d->as_int() == 0 || !v.is_number()) {
    return absl::InvalidArgumentError("test 'divisibleby' needs a non-zero integer");
  }
  return v.as_int() % d->as_int() == 0;
}
absl::StatusOr<bool> TestLowerCase(const Value& v, const CallArgs&) {
  std::string s = ToPythonStr(v);
  return Utf8Lower(s) == s && Utf8Upper(s) != s;
}
absl::StatusOr<bool> TestUpperCase(const Value& v, const CallArgs&) {
  std::string s = ToPythonStr(v);
  return Utf8Upper(s) == s && Utf8Lower(s) != s;
}

const std::map<std::string, TestFn>& Tests() {
  static const auto* tests = new std::map<std::string, TestFn>{{"defined", TestDefined},
                                                               {"undefined", TestUndefined},
                                                               {"none", TestNone},
                                                               {"string", TestString},
                                                               {"number", TestNumber},
                                                               {"integer", TestInteger},
                                                               {"float", TestFloat},
                                                               {"boolean", TestBoolean},
                                                               {"mapping", TestMapping},
                                                               {"sequence", TestSequence},
                                                               {"iterable", TestIterable},
                                                               {"callable", TestCallable},
                                                               {"true", TestTrue},
                                                               {"false", TestFalse},
                                                               {"equalto", TestEq},
                                                               {"eq", TestEq},
                                                               {"==", TestEq},
                                                               {"sameas", TestSameAs},
                                                               {"ne", TestNe},
                                                               {"!=", TestNe},
                                                               {"lt", TestLt},
                                                               {"lessthan", TestLt},
                                                               {"<", TestLt},
                                                               {"le", TestLe},
                                                               {"<=", TestLe},
                                                               {"gt", TestGt},
                                                               {"greaterthan", TestGt},
                                                               {">", TestGt},
                                                               {"ge", TestGe},
                                                               {">=", TestGe},
                                                               {"in", TestIn},
                                                               {"odd", TestOdd},
                                                               {"even", TestEven},
                                                               {"divisibleby", TestDivisibleBy},
                                                               {"lower", TestLowerCase},
                                                               {"upper", TestUpperCase}};
  return *tests;
}

}  // namespace

bool IsKnownTest(const std::string& name) { return Tests().count(name) > 0; }

absl::StatusOr<bool> ApplyTest(const std::string& name, const Value& input, const CallArgs& args) {
  auto it = Tests().find(name);
  if (it == Tests().end()) {
    return absl::InvalidArgumentError(absl::StrCat("unsupported test '", name, "'"));
  }
  return it->second(input, args);
}

}  // namespace quantd::chat_template
