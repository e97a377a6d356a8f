// Validation of metric and label names against the Prometheus data model, with errors that say
// which name is wrong and what was expected.
#ifndef QUANTD_COMMON_METRICS_NAMES_H_
#define QUANTD_COMMON_METRICS_NAMES_H_

#include <string_view>

#include "absl/status/status.h"

namespace quantd::metrics {

// [a-zA-Z_:][a-zA-Z0-9_:]*
absl::Status ValidateMetricName(std::string_view name);

// [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__" (reserved for Prometheus itself).
absl::Status ValidateLabelName(std::string_view name);

// Label values may hold any text, but it must be valid UTF-8.
absl::Status ValidateLabelValue(std::string_view label_name, std::string_view value);

}  // namespace quantd::metrics

#endif  // QUANTD_COMMON_METRICS_NAMES_H_
