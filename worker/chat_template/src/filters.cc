#include "filters.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
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

// Argument `i` by position, else by keyword, else nullopt.
std::optional<Value> Arg(const CallArgs& args, size_t i, const char* keyword) {
  if (i < args.positional.size()) return args.positional[i];
  for (const auto& [k, v] : args.keyword) {
    if (k == keyword) return v;
  }
  return std::nullopt;
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
    if (!part.empty() &&
        std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      key = Value::Int(std::strtoll(part.c_str(), nullptr, 10));
    }
    QCT_ASSIGN(next, GetItem(cur, key));
    cur = std::move(next);
    if (dot == std::string::npos) return cur;
    start = dot + 1;
  }
}

absl::StatusOr<Value> FilterTrim(const Value& v, const CallArgs& args) {
  std::string s = ToPythonStr(v);  // Jinja2 trims soft_str(value).
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
  for (const auto& [k, e] : v.dict()) out.push_back(Value::Tuple({Value::String(k), e}));
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

// Python's float(str) for the decimal forms templates meet (strtod would also take hex).
std::optional<double> ParseDecimal(const std::string& text) {
  std::string s = StripString(text, std::nullopt, true, true);
  if (s.empty() || s.find_first_of("xXpP") != std::string::npos) return std::nullopt;
  char* end = nullptr;
  double d = std::strtod(s.c_str(), &end);
  if (*end != '\0') return std::nullopt;
  return d;
}

// int(float): truncation, refusing values outside 64 bits (Python would make a big integer).
absl::StatusOr<Value> TruncateToInt(double d) {
  if (!std::isfinite(d) || std::fabs(d) >= 9.2e18) {
    return absl::InvalidArgumentError("filter 'int': value out of 64-bit range");
  }
  return Value::Int(static_cast<int64_t>(d));
}

absl::StatusOr<Value> FilterInt(const Value& v, const CallArgs& args) {
  Value fallback = Arg(args, 0, "default").value_or(Value::Int(0));
  if (v.is_float()) return TruncateToInt(v.as_double());
  if (v.is_number()) return Value::Int(v.as_int());
  if (v.is_string()) {
    std::string s = StripString(v.as_string(), std::nullopt, true, true);
    char* end = nullptr;
    errno = 0;
    long long i = std::strtoll(s.c_str(), &end, 10);
    if (!s.empty() && *end == '\0' && errno == 0) return Value::Int(i);
    if (std::optional<double> d = ParseDecimal(s); d && !std::isnan(*d)) return TruncateToInt(*d);
  }
  return fallback;
}

absl::StatusOr<Value> FilterFloat(const Value& v, const CallArgs& args) {
  Value fallback = Arg(args, 0, "default").value_or(Value::Float(0.0));
  if (v.is_number()) return Value::Float(v.as_double());
  if (v.is_string()) {
    if (std::optional<double> d = ParseDecimal(v.as_string())) return Value::Float(*d);
  }
  return fallback;
}

absl::StatusOr<Value> FilterAbs(const Value& v, const CallArgs&) {
  if (v.is_float()) return Value::Float(std::fabs(v.as_double()));
  if (v.is_number()) {
    if (v.as_int() == INT64_MIN) return absl::InvalidArgumentError("abs(): integer overflow");
    return Value::Int(std::llabs(v.as_int()));
  }
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

absl::StatusOr<Value> FilterIndent(const Value& v, const CallArgs& args) {
  Value width = Arg(args, 0, "width").value_or(Value::Int(4));
  std::string indention =
      width.is_string()
          ? width.as_string()
          : std::string(static_cast<size_t>(std::max<int64_t>(0, width.as_int())), ' ');
  bool first = Arg(args, 1, "first").value_or(Value::Bool(false)).Truthy();
  bool blank = Arg(args, 2, "blank").value_or(Value::Bool(false)).Truthy();
  std::vector<std::string> lines = SplitLines(ToPythonStr(v) + "\n");
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) out += "\n";
    if (i > 0 && (blank || !lines[i].empty())) out += indention;
    out += lines[i];
  }
  return Value::String(first ? indention + out : out);
}

// round(value, precision=0, method='common'): Python's round (half to even on the exact binary
// value, which is what printf's correctly rounded conversion does), or math.ceil / math.floor.
absl::StatusOr<Value> FilterRound(const Value& v, const CallArgs& args) {
  if (!v.is_number()) {
    return absl::InvalidArgumentError(
        absl::StrCat("filter 'round' expects a number, got ", v.TypeName()));
  }
  int64_t precision = Arg(args, 0, "precision").value_or(Value::Int(0)).as_int();
  std::string method = ToPythonStr(Arg(args, 1, "method").value_or(Value::String("common")));
  if (precision < 0 || precision > 15) {
    return absl::InvalidArgumentError("filter 'round': precision must be 0..15");
  }
  if (method == "common") {
    if (!v.is_float()) return Value::Int(v.as_int());
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.*f", static_cast<int>(precision), v.as_double());
    return Value::Float(std::strtod(buf, nullptr));
  }
  if (method != "ceil" && method != "floor") {
    return absl::InvalidArgumentError("filter 'round': method must be common, ceil or floor");
  }
  double scale = std::pow(10.0, static_cast<double>(precision));
  double x = v.as_double() * scale;
  return Value::Float((method == "ceil" ? std::ceil(x) : std::floor(x)) / scale);
}

// Jinja2 compares strings case-insensitively in sort/unique/min/max unless case_sensitive.
Value SortKey(const Value& v, bool case_sensitive) {
  if (!case_sensitive && v.is_string()) return Value::String(Utf8Lower(v.as_string()));
  return v;
}

absl::StatusOr<ValueList> KeyedItems(const Value& v, const CallArgs& args, size_t attr_pos,
                                     bool* case_sensitive, ValueList* keys) {
  QCT_ASSIGN(items, Iterate(v));
  *case_sensitive = Arg(args, attr_pos - 1, "case_sensitive").value_or(Value::Bool(false)).Truthy();
  std::optional<Value> attribute = Arg(args, attr_pos, "attribute");
  for (const Value& item : items) {
    Value key = item;
    if (attribute && !attribute->is_none()) {
      QCT_ASSIGN(got, GetPath(item, ToPythonStr(*attribute)));
      key = got;
    }
    keys->push_back(SortKey(key, *case_sensitive));
  }
  return items;
}

absl::StatusOr<Value> FilterSort(const Value& v, const CallArgs& args) {
  bool reverse = Arg(args, 0, "reverse").value_or(Value::Bool(false)).Truthy();
  bool case_sensitive = false;
  ValueList keys;
  QCT_ASSIGN(items, KeyedItems(v, args, 2, &case_sensitive, &keys));
  std::vector<size_t> order(items.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  absl::Status error;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    absl::StatusOr<bool> less =
        reverse ? PythonLess(keys[b], keys[a]) : PythonLess(keys[a], keys[b]);
    if (!less.ok()) error = less.status();
    return less.ok() && *less;
  });
  QCT_RETURN_IF_ERROR(error);
  ValueList out;
  for (size_t i : order) out.push_back(items[i]);
  return Value::List(std::move(out));
}

absl::StatusOr<Value> FilterUnique(const Value& v, const CallArgs& args) {
  bool case_sensitive = false;
  ValueList keys;
  QCT_ASSIGN(items, KeyedItems(v, args, 1, &case_sensitive, &keys));
  ValueList out, seen;
  for (size_t i = 0; i < items.size(); ++i) {
    bool dup = false;
    for (const Value& s : seen) dup = dup || PythonEquals(s, keys[i]);
    if (dup) continue;
    seen.push_back(keys[i]);
    out.push_back(items[i]);
  }
  return Value::List(std::move(out));
}

absl::StatusOr<Value> MinMax(const Value& v, const CallArgs& args, bool want_max) {
  bool case_sensitive = false;
  ValueList keys;
  QCT_ASSIGN(items, KeyedItems(v, args, 1, &case_sensitive, &keys));
  if (items.empty()) return Value::Undefined("No aggregated item, sequence was empty.");
  size_t best = 0;
  for (size_t i = 1; i < items.size(); ++i) {
    QCT_ASSIGN(better,
               want_max ? PythonLess(keys[best], keys[i]) : PythonLess(keys[i], keys[best]));
    if (better) best = i;
  }
  return items[best];
}
absl::StatusOr<Value> FilterMin(const Value& v, const CallArgs& a) { return MinMax(v, a, false); }
absl::StatusOr<Value> FilterMax(const Value& v, const CallArgs& a) { return MinMax(v, a, true); }

absl::StatusOr<Value> FilterDictSort(const Value& v, const CallArgs& args) {
  if (!v.is_dict()) {
    return absl::InvalidArgumentError(
        absl::StrCat("filter 'dictsort' expects a mapping, got ", v.TypeName()));
  }
  bool case_sensitive = Arg(args, 0, "case_sensitive").value_or(Value::Bool(false)).Truthy();
  std::string by = ToPythonStr(Arg(args, 1, "by").value_or(Value::String("key")));
  bool reverse = Arg(args, 2, "reverse").value_or(Value::Bool(false)).Truthy();
  if (by != "key" && by != "value") {
    return absl::InvalidArgumentError("filter 'dictsort': by must be 'key' or 'value'");
  }
  ValueList pairs;
  for (const auto& [k, e] : v.dict()) pairs.push_back(Value::Tuple({Value::String(k), e}));
  CallArgs sort_args;
  sort_args.keyword = {{"reverse", Value::Bool(reverse)},
                       {"case_sensitive", Value::Bool(case_sensitive)},
                       {"attribute", Value::String(by == "key" ? "0" : "1")}};
  return FilterSort(Value::List(std::move(pairs)), sort_args);
}

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
                                                                   {"safe", FilterSafe},
                                                                   {"indent", FilterIndent},
                                                                   {"round", FilterRound},
                                                                   {"sort", FilterSort},
                                                                   {"unique", FilterUnique},
                                                                   {"min", FilterMin},
                                                                   {"max", FilterMax},
                                                                   {"dictsort", FilterDictSort}};
  return *filters;
}

}  // namespace

bool IsKnownFilter(const std::string& name) { return Filters().count(name) > 0; }

absl::StatusOr<Value> ApplyFilter(const std::string& name, const Value& input,
                                  const CallArgs& args) {
  auto it = Filters().find(name);
  if (it == Filters().end()) {
    return absl::InvalidArgumentError(absl::StrCat("unsupported filter '", name, "'"));
  }
  return it->second(input, args);
}

}  // namespace quantd::chat_template
