#include "filters.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "access.h"
#include "errors.h"
#include "utf8.h"

namespace quantd::chat_template {
namespace {

using FilterFn = absl::StatusOr<Value> (*)(const Value&, const CallArgs&);
using TestFn = absl::StatusOr<bool> (*)(const Value&, const CallArgs&);

// Argument `i` by position, else by keyword, else nullopt.
std::optional<Value> Arg(const CallArgs& args, size_t i, const char* keyword) {
  if (i < args.positional.size()) return args.positional[i];
  for (const auto& [k, v] : args.keyword) {
    if (k == keyword) return v;
  }
  return std::nullopt;
}

absl::StatusOr<std::string> RequireString(const Value& v, const char* filter) {
  if (v.is_undefined()) return std::string();
  if (!v.is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat("filter '", filter, "' expects a string, got ", v.TypeName()));
  }
  return v.as_string();
}

// Jinja2's attribute getter for filters: "a.b" walks items then attributes; digits index lists.
absl::StatusOr<Value> GetPath(const Value& obj, const std::string& path) {
  Value cur = obj;
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    std::string part =
        path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    Value key = Value::String(part);
    if (!part.empty() && std::all_of(part.begin(), part.end(), ::isdigit)) {
      key = Value::Int(std::strtoll(part.c_str(), nullptr, 10));
    }
    QCT_ASSIGN(next, GetItem(cur, key));
    cur = std::move(next);
    if (dot == std::string::npos) return cur;
    start = dot + 1;
  }
}

absl::StatusOr<Value> FilterTrim(const Value& v, const CallArgs& args) {
  QCT_ASSIGN(s, RequireString(v, "trim"));
  std::optional<Value> chars = Arg(args, 0, "chars");
  std::optional<std::string> set;
  if (chars && chars->is_string()) set = chars->as_string();
  return Value::String(StripString(s, set, true, true));
}

absl::StatusOr<Value> FilterLength(const Value& v, const CallArgs&) {
  QCT_ASSIGN(n, Length(v));
  return Value::Int(n);
}

absl::StatusOr<Value> FilterUpper(const Value& v, const CallArgs&) {
  return Value::String(Utf8Upper(ToPythonStr(v)));
}
absl::StatusOr<Value> FilterLower(const Value& v, const CallArgs&) {
  return Value::String(Utf8Lower(ToPythonStr(v)));
}

absl::StatusOr<Value> FilterCapitalize(const Value& v, const CallArgs&) {
  std::vector<char32_t> cps = DecodeUtf8(ToPythonStr(v));
  for (size_t i = 0; i < cps.size(); ++i) cps[i] = i == 0 ? ToUpperCp(cps[i]) : ToLowerCp(cps[i]);
  return Value::String(EncodeUtf8(cps));
}

// Jinja2's title: upper-case the first character of every piece after "-", whitespace or
// opening brackets, lower-case the rest.
absl::StatusOr<Value> FilterTitle(const Value& v, const CallArgs&) {
  std::vector<char32_t> cps = DecodeUtf8(ToPythonStr(v));
  auto is_sep = [](char32_t c) {
    return IsPythonSpace(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<';
  };
  for (size_t i = 0; i < cps.size(); ++i) {
    bool starts_piece = i == 0 || is_sep(cps[i - 1]) != is_sep(cps[i]);
    cps[i] = starts_piece ? ToUpperCp(cps[i]) : ToLowerCp(cps[i]);
  }
  return Value::String(EncodeUtf8(cps));
}

absl::StatusOr<Value> FilterToJson(const Value& v, const CallArgs& args) {
  int indent = -1;
  if (auto a = Arg(args, 1, "indent"); a && !a->is_none()) {
    if (!a->is_number()) return absl::InvalidArgumentError("tojson: indent must be an integer");
    indent = static_cast<int>(a->as_int());
  }
  if (auto a = Arg(args, 0, "ensure_ascii"); a && a->Truthy()) {
    return absl::InvalidArgumentError("tojson: ensure_ascii=true is not supported");
  }
  std::string item_sep = indent >= 0 ? "," : ", ";
  std::string key_sep = ": ";
  if (auto a = Arg(args, 2, "separators"); a && !a->is_none()) {
    if (!a->is_list() || a->list().size() != 2 || !a->list()[0].is_string() ||
        !a->list()[1].is_string()) {
      return absl::InvalidArgumentError("tojson: separators must be a pair of strings");
    }
    item_sep = a->list()[0].as_string();
    key_sep = a->list()[1].as_string();
  }
  bool sort_keys = false;
  if (auto a = Arg(args, 3, "sort_keys")) sort_keys = a->Truthy();
  QCT_ASSIGN(json, ToJson(v, indent, item_sep, key_sep, sort_keys));
  return Value::String(json);
}

absl::StatusOr<Value> FilterItems(const Value& v, const CallArgs&) {
  if (v.is_undefined()) return Value::List({});
  if (!v.is_dict()) {
    return absl::InvalidArgumentError(
        absl::StrCat("filter 'items' expects a mapping, got ", v.TypeName()));
  }
  ValueList out;
  for (const auto& [k, e] : v.dict()) out.push_back(Value::List({Value::String(k), e}));
  return Value::List(std::move(out));
}

absl::StatusOr<Value> FilterDefault(const Value& v, const CallArgs& args) {
  Value fallback = Arg(args, 0, "default_value").value_or(Value::String(""));
  bool boolean = Arg(args, 1, "boolean").value_or(Value::Bool(false)).Truthy();
  if (v.is_undefined() || (boolean && !v.Truthy())) return fallback;
  return v;
}

absl::StatusOr<Value> FilterJoin(const Value& v, const CallArgs& args) {
  std::string sep = ToPythonStr(Arg(args, 0, "d").value_or(Value::String("")));
  std::optional<Value> attribute = Arg(args, 1, "attribute");
  QCT_ASSIGN(items, Iterate(v));
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    Value item = items[i];
    if (attribute && !attribute->is_none()) {
      QCT_ASSIGN(got, GetPath(item, ToPythonStr(*attribute)));
      item = got;
    }
    if (i > 0) out += sep;
    out += ToPythonStr(item);
  }
  return Value::String(out);
}

absl::StatusOr<Value> FilterReplace(const Value& v, const CallArgs& args) {
  QCT_ASSIGN(method, GetAttr(Value::String(ToPythonStr(v)), "replace"));
  CallArgs forwarded;
  for (size_t i = 0; i < 3; ++i) {
    static const char* const kNames[] = {"old", "new", "count"};
    if (auto a = Arg(args, i, kNames[i]); a && !a->is_none()) {
      forwarded.positional.push_back(i < 2 ? Value::String(ToPythonStr(*a)) : *a);
    }
  }
  return method.callable().fn(forwarded);
}

absl::StatusOr<Value> FilterFirstLast(const Value& v, bool first) {
  QCT_ASSIGN(items, Iterate(v));
  if (items.empty()) return Value::Undefined("No first/last item, sequence was empty.");
  return first ? items.front() : items.back();
}
absl::StatusOr<Value> FilterFirst(const Value& v, const CallArgs&) {
  return FilterFirstLast(v, true);
}
absl::StatusOr<Value> FilterLast(const Value& v, const CallArgs&) {
  return FilterFirstLast(v, false);
}

absl::StatusOr<Value> FilterList(const Value& v, const CallArgs&) {
  QCT_ASSIGN(items, Iterate(v));
  return Value::List(std::move(items));
}

absl::StatusOr<Value> FilterString(const Value& v, const CallArgs&) {
  return Value::String(ToPythonStr(v));
}

absl::StatusOr<Value> FilterInt(const Value& v, const CallArgs& args) {
  Value fallback = Arg(args, 0, "default").value_or(Value::Int(0));
  if (v.is_number())
    return Value::Int(v.is_float() ? static_cast<int64_t>(v.as_double()) : v.as_int());
  if (v.is_string()) {
    std::string s = StripString(v.as_string(), std::nullopt, true, true);
    char* end = nullptr;
    long long i = std::strtoll(s.c_str(), &end, 10);
    if (!s.empty() && *end == '\0') return Value::Int(i);
    double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && *end == '\0' && std::isfinite(d)) return Value::Int(static_cast<int64_t>(d));
  }
  return fallback;
}

absl::StatusOr<Value> FilterFloat(const Value& v, const CallArgs& args) {
  Value fallback = Arg(args, 0, "default").value_or(Value::Float(0.0));
  if (v.is_number()) return Value::Float(v.as_double());
  if (v.is_string()) {
    std::string s = StripString(v.as_string(), std::nullopt, true, true);
    char* end = nullptr;
    double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && *end == '\0') return Value::Float(d);
  }
  return fallback;
}

absl::StatusOr<Value> FilterAbs(const Value& v, const CallArgs&) {
  if (v.is_float()) return Value::Float(std::fabs(v.as_double()));
  if (v.is_number()) return Value::Int(std::llabs(v.as_int()));
  return absl::InvalidArgumentError(absl::StrCat("bad operand type for abs(): ", v.TypeName()));
}

absl::StatusOr<Value> FilterReverse(const Value& v, const CallArgs&) {
  if (v.is_string()) {
    std::vector<char32_t> cps = DecodeUtf8(v.as_string());
    std::reverse(cps.begin(), cps.end());
    return Value::String(EncodeUtf8(cps));
  }
  QCT_ASSIGN(items, Iterate(v));
  std::reverse(items.begin(), items.end());
  return Value::List(std::move(items));
}

absl::StatusOr<Value> FilterSum(const Value& v, const CallArgs& args) {
  QCT_ASSIGN(items, Iterate(v));
  std::optional<Value> attribute = Arg(args, 0, "attribute");
  Value total = Arg(args, 1, "start").value_or(Value::Int(0));
  for (Value item : items) {
    if (attribute && !attribute->is_none()) {
      QCT_ASSIGN(got, GetPath(item, ToPythonStr(*attribute)));
      item = got;
    }
    if (!item.is_number() || !total.is_number()) {
      return absl::InvalidArgumentError("filter 'sum' expects numbers");
    }
    total = (item.is_float() || total.is_float())
                ? Value::Float(total.as_double() + item.as_double())
                : Value::Int(total.as_int() + item.as_int());
  }
  return total;
}

// select / reject / selectattr / rejectattr share one implementation.
absl::StatusOr<Value> SelectImpl(const Value& v, const CallArgs& args, bool by_attr, bool keep) {
  QCT_ASSIGN(items, Iterate(v));
  size_t next = 0;
  std::string attribute;
  if (by_attr) {
    if (args.positional.empty() || !args.positional[0].is_string()) {
      return absl::InvalidArgumentError("selectattr/rejectattr need an attribute name");
    }
    attribute = args.positional[0].as_string();
    next = 1;
  }
  std::optional<std::string> test;
  if (next < args.positional.size()) {
    if (!args.positional[next].is_string()) {
      return absl::InvalidArgumentError("select/reject: the test name must be a string");
    }
    test = args.positional[next].as_string();
    if (!IsKnownTest(*test)) {
      return absl::InvalidArgumentError(absl::StrCat("unsupported test '", *test, "'"));
    }
    ++next;
  }
  CallArgs test_args;
  test_args.positional.assign(
      args.positional.begin() + static_cast<long>(std::min(next, args.positional.size())),
      args.positional.end());
  ValueList out;
  for (const Value& item : items) {
    Value subject = item;
    if (by_attr) {
      QCT_ASSIGN(got, GetPath(item, attribute));
      subject = got;
    }
    bool passed = subject.Truthy();
    if (test) {
      QCT_ASSIGN(result, ApplyTest(*test, subject, test_args));
      passed = result;
    }
    if (passed == keep) out.push_back(item);
  }
  return Value::List(std::move(out));
}
absl::StatusOr<Value> FilterSelect(const Value& v, const CallArgs& a) {
  return SelectImpl(v, a, false, true);
}
absl::StatusOr<Value> FilterReject(const Value& v, const CallArgs& a) {
  return SelectImpl(v, a, false, false);
}
absl::StatusOr<Value> FilterSelectAttr(const Value& v, const CallArgs& a) {
  return SelectImpl(v, a, true, true);
}
absl::StatusOr<Value> FilterRejectAttr(const Value& v, const CallArgs& a) {
  return SelectImpl(v, a, true, false);
}

absl::StatusOr<Value> FilterMap(const Value& v, const CallArgs& args) {
  QCT_ASSIGN(items, Iterate(v));
  ValueList out;
  std::optional<Value> attribute;
  std::optional<Value> fallback;
  for (const auto& [k, a] : args.keyword) {
    if (k == "attribute") attribute = a;
    if (k == "default") fallback = a;
  }
  if (attribute) {
    for (const Value& item : items) {
      QCT_ASSIGN(got, GetPath(item, ToPythonStr(*attribute)));
      out.push_back(got.is_undefined() && fallback ? *fallback : got);
    }
    return Value::List(std::move(out));
  }
  if (args.positional.empty() || !args.positional[0].is_string()) {
    return absl::InvalidArgumentError("filter 'map' needs a filter name or attribute=");
  }
  std::string filter = args.positional[0].as_string();
  if (!IsKnownFilter(filter)) {
    return absl::InvalidArgumentError(absl::StrCat("unsupported filter '", filter, "'"));
  }
  CallArgs rest;
  rest.positional.assign(args.positional.begin() + 1, args.positional.end());
  rest.keyword = args.keyword;
  for (const Value& item : items) {
    QCT_ASSIGN(mapped, ApplyFilter(filter, item, rest));
    out.push_back(mapped);
  }
  return Value::List(std::move(out));
}

absl::StatusOr<Value> FilterSafe(const Value& v, const CallArgs&) { return v; }

const std::map<std::string, FilterFn>& Filters() {
  static const auto* filters = new std::map<std::string, FilterFn>{{"trim", FilterTrim},
                                                                   {"length", FilterLength},
                                                                   {"count", FilterLength},
                                                                   {"upper", FilterUpper},
                                                                   {"lower", FilterLower},
                                                                   {"capitalize", FilterCapitalize},
                                                                   {"title", FilterTitle},
                                                                   {"tojson", FilterToJson},
                                                                   {"items", FilterItems},
                                                                   {"default", FilterDefault},
                                                                   {"d", FilterDefault},
                                                                   {"join", FilterJoin},
                                                                   {"replace", FilterReplace},
                                                                   {"first", FilterFirst},
                                                                   {"last", FilterLast},
                                                                   {"list", FilterList},
                                                                   {"string", FilterString},
                                                                   {"int", FilterInt},
                                                                   {"float", FilterFloat},
                                                                   {"abs", FilterAbs},
                                                                   {"reverse", FilterReverse},
                                                                   {"sum", FilterSum},
                                                                   {"select", FilterSelect},
                                                                   {"reject", FilterReject},
                                                                   {"selectattr", FilterSelectAttr},
                                                                   {"rejectattr", FilterRejectAttr},
                                                                   {"map", FilterMap},
                                                                   {"safe", FilterSafe}};
  return *filters;
}

// ---- tests ----

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

bool IsKnownFilter(const std::string& name) { return Filters().count(name) > 0; }
bool IsKnownTest(const std::string& name) { return Tests().count(name) > 0; }

absl::StatusOr<Value> ApplyFilter(const std::string& name, const Value& input,
                                  const CallArgs& args) {
  auto it = Filters().find(name);
  if (it == Filters().end()) {
    return absl::InvalidArgumentError(absl::StrCat("unsupported filter '", name, "'"));
  }
  return it->second(input, args);
}

absl::StatusOr<bool> ApplyTest(const std::string& name, const Value& input, const CallArgs& args) {
  auto it = Tests().find(name);
  if (it == Tests().end()) {
    return absl::InvalidArgumentError(absl::StrCat("unsupported test '", name, "'"));
  }
  return it->second(input, args);
}

}  // namespace quantd::chat_template
