#include "metrics/text_format.h"

#include <charconv>
#include <cmath>

namespace quantd::metrics {
namespace {

// name{a="x",b="y",extra="v"} value\n — the extra label is how histograms add "le".
void AppendLine(std::string* out, std::string_view name, const std::vector<std::string>& names,
                const std::vector<std::string>& values, std::string_view extra_name,
                std::string_view extra_value, double value) {
  out->append(name);
  bool has_extra = !extra_name.empty();
  if (!names.empty() || has_extra) {
    out->push_back('{');
    for (size_t i = 0; i < names.size(); ++i) {
      if (i > 0) out->push_back(',');
      out->append(names[i]).append("=\"").append(EscapeLabelValue(values[i])).push_back('"');
    }
    if (has_extra) {
      if (!names.empty()) out->push_back(',');
      out->append(extra_name).append("=\"").append(extra_value).push_back('"');
    }
    out->push_back('}');
  }
  out->push_back(' ');
  out->append(FormatValue(value)).push_back('\n');
}

std::string Escape(std::string_view text, bool escape_quote) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\') {
      out.append("\\\\");
    } else if (c == '\n') {
      out.append("\\n");
    } else if (c == '"' && escape_quote) {
      out.append("\\\"");
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace

std::string FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buffer[32];
  // Whole numbers that doubles hold exactly (counts, bytes) are written as plain integers.
  if (value == std::trunc(value) && std::fabs(value) < 9007199254740992.0) {
    auto result = std::to_chars(buffer, buffer + sizeof(buffer), static_cast<long long>(value));
    return std::string(buffer, result.ptr);
  }
  auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, result.ptr);
}

std::string EscapeLabelValue(std::string_view value) { return Escape(value, true); }
std::string EscapeHelp(std::string_view help) { return Escape(help, false); }

void AppendHeader(std::string* out, std::string_view name, std::string_view help,
                  std::string_view type) {
  out->append("# HELP ").append(name).append(" ").append(EscapeHelp(help)).push_back('\n');
  out->append("# TYPE ").append(name).append(" ").append(type).push_back('\n');
}

void AppendSamples(std::string* out, std::string_view name,
                   const std::vector<std::string>& label_names,
                   const std::vector<std::string>& label_values, const Counter& counter) {
  AppendLine(out, name, label_names, label_values, "", "", counter.Value());
}

void AppendSamples(std::string* out, std::string_view name,
                   const std::vector<std::string>& label_names,
                   const std::vector<std::string>& label_values, const Gauge& gauge) {
  AppendLine(out, name, label_names, label_values, "", "", gauge.Value());
}

void AppendSamples(std::string* out, std::string_view name,
                   const std::vector<std::string>& label_names,
                   const std::vector<std::string>& label_values, const Histogram& histogram) {
  Histogram::Snapshot snapshot = histogram.Collect();
  std::string bucket_name = std::string(name) + "_bucket";
  for (size_t i = 0; i < snapshot.bounds.size(); ++i) {
    AppendLine(out, bucket_name, label_names, label_values, "le", FormatValue(snapshot.bounds[i]),
               static_cast<double>(snapshot.cumulative_counts[i]));
  }
  AppendLine(out, bucket_name, label_names, label_values, "le", "+Inf",
             static_cast<double>(snapshot.count));
  AppendLine(out, std::string(name) + "_sum", label_names, label_values, "", "", snapshot.sum);
  AppendLine(out, std::string(name) + "_count", label_names, label_values, "", "",
             static_cast<double>(snapshot.count));
}

}  // namespace quantd::metrics
