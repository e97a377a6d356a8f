// Jinja2's built-in filters (filters.cc) and tests (template_tests.cc) that chat templates
// use, plus transformers' tojson.
#ifndef QUANTD_WORKER_CHAT_TEMPLATE_SRC_FILTERS_H_
#define QUANTD_WORKER_CHAT_TEMPLATE_SRC_FILTERS_H_

#include <string>

#include "absl/status/statusor.h"
#include "value.h"

namespace quantd::chat_template {

bool IsKnownFilter(const std::string& name);
bool IsKnownTest(const std::string& name);

// `input | name(args)`.
absl::StatusOr<Value> ApplyFilter(const std::string& name, const Value& input,
                                  const CallArgs& args);
// `input is name(args)`.
absl::StatusOr<bool> ApplyTest(const std::string& name, const Value& input, const CallArgs& args);

}  // namespace quantd::chat_template

#endif  // QUANTD_WORKER_CHAT_TEMPLATE_SRC_FILTERS_H_
