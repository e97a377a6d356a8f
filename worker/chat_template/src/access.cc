#include "access.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "errors.h"
#include "utf8.h"

namespace quantd::chat_template {
namespace {

absl::Status UndefinedError(const Value& v) {
  return absl::InvalidArgumentError(v.undefined_hint().empty() ? "value is undefined"
                                                               : v.undefined_hint());
}

std::string ObjectName(const Value& v) { return absl::StrCat("'", v.TypeName(), " object'"); }

absl::StatusOr<std::string> StringArg(const CallArgs& args, size_t i, const std::string& method) {
  if (i >= args.positional.size() || !args.positional[i].is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat("str.", method, "() expects a string argument ", i + 1));
  }
  return args.positional[i].as_string();
}

// Optional string argument that may also be None.
std::optional<std::string> OptionalStringArg(const CallArgs& args, size_t i) {
  if (i < args.positional.size() && args.positional[i].is_string()) {
    return args.positional[i].as_string();
  }
  return std::nullopt;
}

int64_t IntArg(const CallArgs& args, size_t i, const std::string& keyword, int64_t fallback) {
  if (i < args.positional.size() && args.positional[i].is_number()) {
    return args.positional[i].as_int();
  }
  for (const auto& [k, v] : args.keyword) {
    if (k == keyword && v.is_number()) return v.as_int();
  }
  return fallback;
}

std::vector<std::string> SplitString(const std::string& s, const std::optional<std::string>& sep,
                                     int64_t maxsplit, bool from_right) {
  std::vector<std::string> parts;
  if (!sep) {
    std::vector<char32_t> cps = DecodeUtf8(s);
    std::vector<std::vector<char32_t>> words;
    if (!from_right) {
      size_t i = 0;
      while (i < cps.size()) {
        while (i < cps.size() && IsPythonSpace(cps[i])) ++i;
        if (i >= cps.size()) break;
        if (maxsplit >= 0 && static_cast<int64_t>(words.size()) == maxsplit) {
          size_t end = cps.size();
          while (end > i && IsPythonSpace(cps[end - 1])) --end;
          words.emplace_back(cps.begin() + static_cast<long>(i),
                             cps.begin() + static_cast<long>(end));
          break;
        }
        size_t j = i;
        while (j < cps.size() && !IsPythonSpace(cps[j])) ++j;
        words.emplace_back(cps.begin() + static_cast<long>(i), cps.begin() + static_cast<long>(j));
        i = j;
      }
    } else {
      size_t i = cps.size();
      while (i > 0) {
        while (i > 0 && IsPythonSpace(cps[i - 1])) --i;
        if (i == 0) break;
        if (maxsplit >= 0 && static_cast<int64_t>(words.size()) == maxsplit) {
          size_t start = 0;
          while (start < i && IsPythonSpace(cps[start])) ++start;
          words.emplace_back(cps.begin() + static_cast<long>(start),
                             cps.begin() + static_cast<long>(i));
          break;
        }
        size_t j = i;
        while (j > 0 && !IsPythonSpace(cps[j - 1])) --j;
        words.emplace_back(cps.begin() + static_cast<long>(j), cps.begin() + static_cast<long>(i));
        i = j;
      }
      std::reverse(words.begin(), words.end());
    }
    for (const auto& w : words) parts.push_back(EncodeUtf8(w));
    return parts;
  }
  if (!from_right) {
    size_t start = 0;
    while (true) {
      size_t hit = s.find(*sep, start);
      if (hit == std::string::npos ||
          (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit)) {
        parts.push_back(s.substr(start));
        break;
      }
      parts.push_back(s.substr(start, hit - start));
      start = hit + sep->size();
    }
    return parts;
  }
  size_t end = s.size();
  while (true) {
    size_t hit = end >= sep->size() ? s.rfind(*sep, end - sep->size()) : std::string::npos;
    if (hit == std::string::npos ||
        (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit)) {
      parts.push_back(s.substr(0, end));
      break;
    }
    parts.push_back(s.substr(hit + sep->size(), end - hit - sep->size()));
    end = hit;
  }
  std::reverse(parts.begin(), parts.end());
  return parts;
}

bool AffixMatch(const std::string& s, const std::string& affix, bool prefix) {
  if (affix.size() > s.size()) return false;
  return prefix ? s.compare(0, affix.size(), affix) == 0
                : s.compare(s.size() - affix.size(), affix.size(), affix) == 0;
}

absl::StatusOr<Value> CallStringMethod(const std::string& s, const std::string& name,
                                       const CallArgs& args) {
  if (name == "startswith" || name == "endswith") {
    bool prefix = name == "startswith";
    if (!args.positional.empty() && args.positional[0].is_list()) {
      for (const Value& v : args.positional[0].list()) {
        if (v.is_string() && AffixMatch(s, v.as_string(), prefix)) return Value::Bool(true);
      }
      return Value::Bool(false);
    }
    QCT_ASSIGN(affix, StringArg(args, 0, name));
    return Value::Bool(AffixMatch(s, affix, prefix));
  }
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    return Value::String(
        StripString(s, OptionalStringArg(args, 0), name != "rstrip", name != "lstrip"));
  }
  if (name == "split" || name == "rsplit") {
    std::optional<std::string> sep = OptionalStringArg(args, 0);
    for (const auto& [k, v] : args.keyword) {
      if (k == "sep" && v.is_string()) sep = v.as_string();
    }
    if (sep && sep->empty()) return absl::InvalidArgumentError("empty separator");
    ValueList out;
    for (auto& part : SplitString(s, sep, IntArg(args, 1, "maxsplit", -1), name == "rsplit")) {
      out.push_back(Value::String(std::move(part)));
    }
    return Value::List(std::move(out));
  }
  if (name == "upper") return Value::String(Utf8Upper(s));
  if (name == "lower") return Value::String(Utf8Lower(s));
  if (name == "capitalize" || name == "title") {
    std::vector<char32_t> cps = DecodeUtf8(s);
    bool prev_cased = false;
    for (size_t i = 0; i < cps.size(); ++i) {
      bool start = name == "capitalize" ? i == 0 : !prev_cased;
      bool cased = IsCased(cps[i]);
      cps[i] = start ? ToUpperCp(cps[i]) : ToLowerCp(cps[i]);
      prev_cased = cased;
    }
    return Value::String(EncodeUtf8(cps));
  }
  if (name == "replace") {
    QCT_ASSIGN(from, StringArg(args, 0, name));
    QCT_ASSIGN(to, StringArg(args, 1, name));
    int64_t count = IntArg(args, 2, "count", -1);
    std::string out;
    if (from.empty()) {  // Python inserts `to` around every character.
      std::vector<char32_t> cps = DecodeUtf8(s);
      int64_t done = 0;
      for (char32_t cp : cps) {
        if (count < 0 || done < count) {
          out += to;
          ++done;
        }
        AppendUtf8(cp, &out);
      }
      if (count < 0 || done < count) out += to;
      return Value::String(out);
    }
    size_t start = 0;
    int64_t done = 0;
    while (count < 0 || done < count) {
      size_t hit = s.find(from, start);
      if (hit == std::string::npos) break;
      out += s.substr(start, hit - start) + to;
      start = hit + from.size();
      ++done;
    }
    return Value::String(out + s.substr(start));
  }
  if (name == "find" || name == "rfind" || name == "count") {
    QCT_ASSIGN(sub, StringArg(args, 0, name));
    if (name == "count") {
      if (sub.empty()) return Value::Int(Utf8Length(s) + 1);
      int64_t n = 0;
      for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + sub.size())) ++n;
      return Value::Int(n);
    }
    size_t hit = name == "find" ? s.find(sub) : s.rfind(sub);
    if (hit == std::string::npos) return Value::Int(-1);
    return Value::Int(Utf8Length(s.substr(0, hit)));
  }
  if (name == "join") {
    if (args.positional.empty()) return absl::InvalidArgumentError("str.join() takes one argument");
    QCT_ASSIGN(items, Iterate(args.positional[0]));
    std::string out;
    for (size_t i = 0; i < items.size(); ++i) {
      if (!items[i].is_string()) {
        return absl::InvalidArgumentError(
            absl::StrCat("sequence item ", i, ": expected str, ", items[i].TypeName(), " found"));
      }
      if (i > 0) out += s;
      out += items[i].as_string();
    }
    return Value::String(out);
  }
  if (name == "isdigit" || name == "isalpha" || name == "isspace" || name == "isalnum" ||
      name == "islower" || name == "isupper") {
    std::vector<char32_t> cps = DecodeUtf8(s);
    if (cps.empty()) return Value::Bool(false);
    bool any_cased = false;
    for (char32_t cp : cps) {
      bool ok = true;
      if (name == "isdigit") ok = cp >= '0' && cp <= '9';
      if (name == "isalpha") ok = IsAlnumCp(cp) && !(cp >= '0' && cp <= '9');
      if (name == "isalnum") ok = IsAlnumCp(cp);
      if (name == "isspace") ok = IsPythonSpace(cp);
      if (name == "islower" && IsCased(cp)) {
        ok = ToLowerCp(cp) == cp;
        any_cased = true;
      }
      if (name == "isupper" && IsCased(cp)) {
        ok = ToUpperCp(cp) == cp;
        any_cased = true;
      }
      if (!ok) return Value::Bool(false);
    }
    if (name == "islower" || name == "isupper") return Value::Bool(any_cased);
    return Value::Bool(true);
  }
  if (name == "splitlines") {
    ValueList out;
    for (std::string& line : SplitLines(s)) out.push_back(Value::String(std::move(line)));
    return Value::List(std::move(out));
  }
  return absl::InvalidArgumentError(absl::StrCat("unsupported method 'str.", name, "'"));
}

bool IsStringMethod(const std::string& name) {
  static const char* const kNames[] = {
      "startswith", "endswith",   "strip",      "lstrip",  "rstrip",  "split",   "rsplit",
      "upper",      "lower",      "capitalize", "title",   "replace", "find",    "rfind",
      "count",      "join",       "isdigit",    "isalpha", "isspace", "isalnum", "islower",
      "isupper",    "splitlines", "format",     "center",  "encode",  "zfill",   "ljust",
      "rjust",      "partition",  "index",      "casefold"};
  return std::find(std::begin(kNames), std::end(kNames), name) != std::end(kNames);
}

absl::StatusOr<Value> CallDictMethod(const Value& dict, const std::string& name,
                                     const CallArgs& args) {
  if (name == "items" || name == "keys" || name == "values") {
    ValueList out;
    for (const auto& [k, v] : dict.dict()) {
      if (name == "items")
        out.push_back(Value::Tuple({Value::String(k), v}));
      else if (name == "keys")
        out.push_back(Value::String(k));
      else
        out.push_back(v);
    }
    return Value::List(std::move(out));
  }
  if (name == "get") {
    if (args.positional.empty()) return absl::InvalidArgumentError("dict.get() needs a key");
    const Value* found =
        args.positional[0].is_string() ? dict.Find(args.positional[0].as_string()) : nullptr;
    if (found != nullptr) return *found;
    return args.positional.size() > 1 ? args.positional[1] : Value::None();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unsupported method 'dict.", name, "' (the sandbox makes dicts immutable)"));
}

bool IsDictMethod(const std::string& name) {
  static const char* const kNames[] = {"items",  "keys",       "values", "get",  "pop",
                                       "update", "setdefault", "clear",  "copy", "popitem"};
  return std::find(std::begin(kNames), std::end(kNames), name) != std::end(kNames);
}

bool IsListMethod(const std::string& name) {
  static const char* const kNames[] = {"append", "extend",  "insert", "pop",   "remove", "clear",
                                       "sort",   "reverse", "index",  "count", "copy"};
  return std::find(std::begin(kNames), std::end(kNames), name) != std::end(kNames);
}

// Python index normalisation for item access; nullopt when out of range.
std::optional<size_t> NormalizeIndex(int64_t index, size_t size) {
  int64_t n = static_cast<int64_t>(size);
  if (index < 0) index += n;
  if (index < 0 || index >= n) return std::nullopt;
  return static_cast<size_t>(index);
}

}  // namespace

std::vector<std::string> SplitLines(const std::string& s) {
  std::vector<std::string> lines;
  std::vector<char32_t> cps = DecodeUtf8(s);
  std::vector<char32_t> line;
  for (size_t i = 0; i < cps.size(); ++i) {
    char32_t c = cps[i];
    bool boundary = c == '\n' || c == '\r' || c == 0x0b || c == 0x0c || c == 0x1c || c == 0x1d ||
                    c == 0x1e || c == 0x85 || c == 0x2028 || c == 0x2029;
    if (!boundary) {
      line.push_back(c);
      continue;
    }
    if (c == '\r' && i + 1 < cps.size() && cps[i + 1] == '\n') ++i;
    lines.push_back(EncodeUtf8(line));
    line.clear();
  }
  if (!line.empty()) lines.push_back(EncodeUtf8(line));
  return lines;
}

std::string StripString(const std::string& s, const std::optional<std::string>& chars, bool left,
                        bool right) {
  std::vector<char32_t> cps = DecodeUtf8(s);
  std::vector<char32_t> set;
  if (chars) set = DecodeUtf8(*chars);
  auto strip_it = [&](char32_t cp) {
    return chars ? std::find(set.begin(), set.end(), cp) != set.end() : IsPythonSpace(cp);
  };
  size_t begin = 0, end = cps.size();
  if (left) {
    while (begin < end && strip_it(cps[begin])) ++begin;
  }
  if (right) {
    while (end > begin && strip_it(cps[end - 1])) --end;
  }
  return EncodeUtf8(std::vector<char32_t>(cps.begin() + static_cast<long>(begin),
                                          cps.begin() + static_cast<long>(end)));
}

absl::StatusOr<Value> GetAttr(const Value& obj, const std::string& name) {
  if (obj.is_undefined()) return UndefinedError(obj);
  if (obj.is_string() && IsStringMethod(name)) {
    std::string s = obj.as_string();
    return Value::Function(
        "str." + name, [s, name](const CallArgs& args) { return CallStringMethod(s, name, args); });
  }
  if (obj.is_dict() && IsDictMethod(name)) {
    return Value::Function("dict." + name, [obj, name](const CallArgs& args) {
      return CallDictMethod(obj, name, args);
    });
  }
  if (obj.is_list() && IsListMethod(name)) {
    return Value::Function("list." + name, [name](const CallArgs&) -> absl::StatusOr<Value> {
      return absl::InvalidArgumentError(
          absl::StrCat("unsupported method 'list.", name, "' (the sandbox makes lists immutable)"));
    });
  }
  if (obj.is_dict() || obj.is_namespace()) {
    if (const Value* v = obj.Find(name)) return *v;
  }
  return Value::Undefined(absl::StrCat(ObjectName(obj), " has no attribute '", name, "'"));
}

absl::StatusOr<Value> GetItem(const Value& obj, const Value& key) {
  if (obj.is_undefined()) return UndefinedError(obj);
  if (obj.is_dict() && key.is_string()) {
    if (const Value* v = obj.Find(key.as_string())) return *v;
  } else if (obj.is_list() && key.is_number() && !key.is_float()) {
    if (auto i = NormalizeIndex(key.as_int(), obj.list().size())) return obj.list()[*i];
  } else if (obj.is_string() && key.is_number() && !key.is_float()) {
    std::vector<char32_t> cps = DecodeUtf8(obj.as_string());
    if (auto i = NormalizeIndex(key.as_int(), cps.size())) {
      std::string out;
      AppendUtf8(cps[*i], &out);
      return Value::String(out);
    }
  }
  if (key.is_string()) {
    if (!obj.is_dict()) return GetAttr(obj, key.as_string());
    return Value::Undefined(absl::StrCat(ObjectName(obj), " has no attribute ", ToPythonRepr(key)));
  }
  // Jinja2 quotes the object type for attributes but not for elements.
  return Value::Undefined(
      absl::StrCat(obj.TypeName(), " object has no element ", ToPythonRepr(key)));
}

absl::StatusOr<Value> Slice(const Value& obj, std::optional<int64_t> start,
                            std::optional<int64_t> stop, std::optional<int64_t> step) {
  if (obj.is_undefined()) return UndefinedError(obj);
  int64_t st = step.value_or(1);
  if (st == 0) return absl::InvalidArgumentError("slice step cannot be zero");
  std::vector<char32_t> cps;
  int64_t n = 0;
  if (obj.is_string()) {
    cps = DecodeUtf8(obj.as_string());
    n = static_cast<int64_t>(cps.size());
  } else if (obj.is_list()) {
    n = static_cast<int64_t>(obj.list().size());
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("'", obj.TypeName(), "' object is not subscriptable"));
  }
  // Python's slice.indices().
  auto clamp = [&](std::optional<int64_t> v, int64_t def) {
    if (!v) return def;
    int64_t x = *v;
    if (x < 0) x += n;
    if (st > 0) return std::clamp<int64_t>(x, 0, n);
    return std::clamp<int64_t>(x, -1, n - 1);
  };
  int64_t lo = clamp(start, st > 0 ? 0 : n - 1);
  int64_t hi = clamp(stop, st > 0 ? n : -1);
  std::vector<int64_t> idx;
  for (int64_t i = lo; st > 0 ? i < hi : i > hi; i += st) idx.push_back(i);
  if (obj.is_string()) {
    std::string out;
    for (int64_t i : idx) AppendUtf8(cps[static_cast<size_t>(i)], &out);
    return Value::String(out);
  }
  ValueList out;
  for (int64_t i : idx) out.push_back(obj.list()[static_cast<size_t>(i)]);
  return obj.is_tuple() ? Value::Tuple(std::move(out)) : Value::List(std::move(out));
}

absl::StatusOr<ValueList> Iterate(const Value& value) {
  switch (value.kind()) {
    case Value::Kind::kUndefined:
      return ValueList{};
    case Value::Kind::kList:
      return value.list();
    case Value::Kind::kDict: {
      ValueList keys;
      for (const auto& [k, v] : value.dict()) keys.push_back(Value::String(k));
      return keys;
    }
    case Value::Kind::kString: {
      ValueList chars;
      for (char32_t cp : DecodeUtf8(value.as_string())) {
        std::string s;
        AppendUtf8(cp, &s);
        chars.push_back(Value::String(s));
      }
      return chars;
    }
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("'", value.TypeName(), "' object is not iterable"));
  }
}

absl::StatusOr<int64_t> Length(const Value& value) {
  switch (value.kind()) {
    case Value::Kind::kUndefined:
      return 0;
    case Value::Kind::kString:
      return Utf8Length(value.as_string());
    case Value::Kind::kList:
      return static_cast<int64_t>(value.list().size());
    case Value::Kind::kDict:
      return static_cast<int64_t>(value.dict().size());
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("object of type '", value.TypeName(), "' has no len()"));
  }
}

}  // namespace quantd::chat_template
