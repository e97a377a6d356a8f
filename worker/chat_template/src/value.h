// Value: the runtime value of the chat-template engine. It models the Python objects Jinja2 sees
// when transformers renders a template: None, bool, int, float, str, list, dict (insertion
// ordered, as Python dicts are), plus Jinja2's Undefined, namespace() objects and callables
// (macros, globals such as raise_exception, bound string/dict methods).
#ifndef QUANTD_WORKER_CHAT_TEMPLATE_SRC_VALUE_H_
#define QUANTD_WORKER_CHAT_TEMPLATE_SRC_VALUE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace quantd::chat_template {

class Value;
using ValueList = std::vector<Value>;
using ValueDict = std::vector<std::pair<std::string, Value>>;

// Arguments of a call: positional then keyword, as in Python.
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

struct Callable {
  std::string name;
  std::function<absl::StatusOr<Value>(const CallArgs&)> fn;
};

class Value {
 public:
  enum class Kind {
    kUndefined,
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,
    kList,
    kDict,
    kNamespace,
    kCallable
  };

  Value() = default;  // Undefined.
  static Value Undefined(std::string hint);
  static Value None();
  static Value Bool(bool b);
  static Value Int(int64_t i);
  static Value Float(double d);
  static Value String(std::string s);
  static Value List(ValueList items);
  // A Python tuple: behaves as a list except that it prints as (a, b) and never equals a list.
  static Value Tuple(ValueList items);
  static Value Dict(ValueDict items);
  static Value Namespace(ValueDict items);
  static Value Function(std::string name, std::function<absl::StatusOr<Value>(const CallArgs&)> fn);
  // Converts nlohmann::json or nlohmann::ordered_json (object keys keep the container's order).
  template <typename Json>
  static Value FromJson(const Json& j);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_bool() const { return kind_ == Kind::kBool; }
  bool is_int() const { return kind_ == Kind::kInt; }
  bool is_float() const { return kind_ == Kind::kFloat; }
  // Python numbers: bool is an int subclass.
  bool is_number() const { return is_int() || is_float() || is_bool(); }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_list() const { return kind_ == Kind::kList; }
  bool is_tuple() const { return kind_ == Kind::kList && tuple_; }
  bool is_dict() const { return kind_ == Kind::kDict; }
  bool is_namespace() const { return kind_ == Kind::kNamespace; }
  bool is_callable() const { return kind_ == Kind::kCallable; }

  bool as_bool() const { return bool_; }
  int64_t as_int() const { return is_bool() ? (bool_ ? 1 : 0) : int_; }
  double as_double() const { return is_float() ? float_ : static_cast<double>(as_int()); }
  const std::string& as_string() const { return string_; }
  // For Undefined: the expression that produced it, for error messages.
  const std::string& undefined_hint() const { return string_; }
  const ValueList& list() const { return *list_; }
  const ValueDict& dict() const { return *dict_; }
  ValueDict& mutable_namespace() const { return *dict_; }
  const Callable& callable() const { return *callable_; }

  // Dict / namespace lookup; nullptr when absent.
  const Value* Find(std::string_view key) const;

  // Python truthiness (Undefined is falsy).
  bool Truthy() const;
  // Python's type name, for error messages ("str", "int", "dict", "Undefined", ...).
  std::string TypeName() const;

 private:
  Kind kind_ = Kind::kUndefined;
  bool bool_ = false;
  bool tuple_ = false;
  int64_t int_ = 0;
  double float_ = 0;
  std::string string_;
  std::shared_ptr<const ValueList> list_;
  std::shared_ptr<ValueDict> dict_;
  std::shared_ptr<const Callable> callable_;
};

template <typename Json>
Value Value::FromJson(const Json& j) {
  if (j.is_null()) return None();
  if (j.is_boolean()) return Bool(j.template get<bool>());
  if (j.is_number_unsigned()) return Int(static_cast<int64_t>(j.template get<uint64_t>()));
  if (j.is_number_integer()) return Int(j.template get<int64_t>());
  if (j.is_number_float()) return Float(j.template get<double>());
  if (j.is_string()) return String(j.template get<std::string>());
  if (j.is_array()) {
    ValueList items;
    items.reserve(j.size());
    for (const auto& e : j) items.push_back(FromJson(e));
    return List(std::move(items));
  }
  if (j.is_object()) {
    ValueDict items;
    items.reserve(j.size());
    for (auto it = j.begin(); it != j.end(); ++it) items.emplace_back(it.key(), FromJson(*it));
    return Dict(std::move(items));
  }
  return None();  // Binary values do not occur in chat contexts.
}

// Python's str(value) as Jinja2 renders it ({{ x }}, |string, ~). Undefined renders empty.
std::string ToPythonStr(const Value& v);
// Python's repr(value).
std::string ToPythonRepr(const Value& v);
// Python's repr of a float ("1.0", "1e+20", "0.30000000000000004").
std::string FormatPythonFloat(double d);
// Python ==.
bool PythonEquals(const Value& a, const Value& b);
// Python <, for numbers and strings (code point order) and lists; error for other types.
absl::StatusOr<bool> PythonLess(const Value& a, const Value& b);
// json.dumps(v, ensure_ascii=False, indent=indent, separators=..., sort_keys=...), as transformers'
// tojson filter calls it. indent < 0 means None.
absl::StatusOr<std::string> ToJson(const Value& v, int indent, const std::string& item_separator,
                                   const std::string& key_separator, bool sort_keys);

}  // namespace quantd::chat_template

#endif  // QUANTD_WORKER_CHAT_TEMPLATE_SRC_VALUE_H_
