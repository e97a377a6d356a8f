// Pieces of the Prometheus text exposition format 0.0.4: value formatting, escaping, sample lines.
// https://prometheus.io/docs/instrumenting/exposition_formats/
#ifndef QUANTD_COMMON_METRICS_TEXT_FORMAT_H_
#define QUANTD_COMMON_METRICS_TEXT_FORMAT_H_

#include <string>
#include <string_view>
#include <vector>

#include "metrics/counter.h"
#include "metrics/gauge.h"
#include "metrics/histogram.h"

namespace quantd::metrics {

inline constexpr std::string_view kTextContentType = "text/plain; version=0.0.4; charset=utf-8";

// Shortest text that parses back to `value`; "+Inf", "-Inf", "NaN" for the special values.
std::string FormatValue(double value);

// Label values escape backslash, double quote and newline; help text escapes backslash and newline.
std::string EscapeLabelValue(std::string_view value);
std::string EscapeHelp(std::string_view help);

// "# HELP name help\n# TYPE name type\n".
void AppendHeader(std::string* out, std::string_view name, std::string_view help,
                  std::string_view type);

// The sample lines of one child of a family, its labels given as parallel name/value lists.
void AppendSamples(std::string* out, std::string_view name,
                   const std::vector<std::string>& label_names,
                   const std::vector<std::string>& label_values, const Counter& counter);
void AppendSamples(std::string* out, std::string_view name,
                   const std::vector<std::string>& label_names,
                   const std::vector<std::string>& label_values, const Gauge& gauge);
void AppendSamples(std::string* out, std::string_view name,
                   const std::vector<std::string>& label_names,
                   const std::vector<std::string>& label_values, const Histogram& histogram);

}  // namespace quantd::metrics

#endif  // QUANTD_COMMON_METRICS_TEXT_FORMAT_H_
