// Attribute, item and slice access with Jinja2's sandbox semantics, iteration, and the Python
// str / dict methods templates call (message.content.startswith(...), tool.items(), ...).
#ifndef QUANTD_WORKER_CHAT_TEMPLATE_SRC_ACCESS_H_
#define QUANTD_WORKER_CHAT_TEMPLATE_SRC_ACCESS_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "value.h"

namespace quantd::chat_template {

// obj.name: a Python attribute (bound method) first, then the item; Undefined when neither
// exists. Accessing anything on Undefined is an error, as in Jinja2.
absl::StatusOr<Value> GetAttr(const Value& obj, const std::string& name);
// obj[key]: the item first, then a Python attribute for string keys.
absl::StatusOr<Value> GetItem(const Value& obj, const Value& key);
// obj[start:stop:step] on strings and lists.
absl::StatusOr<Value> Slice(const Value& obj, std::optional<int64_t> start,
                            std::optional<int64_t> stop, std::optional<int64_t> step);
// What `for x in value` iterates: list items, dict keys, string characters; nothing for Undefined.
absl::StatusOr<ValueList> Iterate(const Value& value);
// Python's len(); Undefined has length 0.
absl::StatusOr<int64_t> Length(const Value& value);
// Python's str.splitlines(): splits on \n, \r, \r\n, \v, \f, \x1c-\x1e, \x85, U+2028, U+2029.
std::vector<std::string> SplitLines(const std::string& s);
// Python's str.strip/lstrip/rstrip with optional characters (nullopt: whitespace).
std::string StripString(const std::string& s, const std::optional<std::string>& chars, bool left,
                        bool right);

}  // namespace quantd::chat_template

#endif  // QUANTD_WORKER_CHAT_TEMPLATE_SRC_ACCESS_H_
