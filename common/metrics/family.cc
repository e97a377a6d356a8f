#include "metrics/family.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "metrics/names.h"

namespace quantd::metrics {

std::string_view MetricTypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

FamilyBase::FamilyBase(std::string name, std::string help, MetricType type,
                       std::vector<std::string> label_names)
    : name_(std::move(name)),
      help_(std::move(help)),
      type_(type),
      label_names_(std::move(label_names)) {}

absl::StatusOr<std::vector<std::string>> FamilyBase::LabelValuesOf(const Labels& labels) const {
  bool names_match = labels.size() == label_names_.size();
  for (size_t i = 0; names_match && i < label_names_.size(); ++i) {
    names_match = labels.count(label_names_[i]) == 1;
  }
  if (!names_match) {
    std::vector<std::string> given;
    for (const auto& [label, value] : labels) given.push_back(label);
    return absl::InvalidArgumentError(absl::StrCat(
        "metric ", name_, ": labels {", absl::StrJoin(given, ", "),
        "} do not match its declared label names {", absl::StrJoin(label_names_, ", "), "}"));
  }
  std::vector<std::string> values;
  values.reserve(label_names_.size());
  for (const std::string& label : label_names_) {
    const std::string& value = labels.at(label);
    if (absl::Status status = ValidateLabelValue(label, value); !status.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("metric ", name_, ": ", status.message()));
    }
    values.push_back(value);
  }
  return values;
}

}  // namespace quantd::metrics
