#include "metrics/registry.h"

#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "metrics/names.h"

namespace quantd::metrics {
namespace {

// Every series name a family writes.
std::vector<std::string> SeriesNamesOf(const std::string& name, MetricType type) {
  if (type != MetricType::kHistogram) return {name};
  return {name + "_bucket", name + "_sum", name + "_count"};
}

// What a family claims: its series names and its own name.
std::vector<std::string> ExposedNames(const std::string& name, MetricType type) {
  std::vector<std::string> names = SeriesNamesOf(name, type);
  if (type == MetricType::kHistogram) names.push_back(name);
  return names;
}

}  // namespace

absl::Status Registry::Validate(const std::string& name, const std::string& help, MetricType type,
                                const std::vector<std::string>& label_names) const {
  if (absl::Status status = ValidateMetricName(name); !status.ok()) return status;
  std::string where = absl::StrCat("metric ", name, ": ");
  if (help.empty()) return absl::InvalidArgumentError(absl::StrCat(where, "help text is required"));
  bool ends_in_total = absl::EndsWith(name, "_total");
  if (type == MetricType::kCounter && !ends_in_total) {
    return absl::InvalidArgumentError(absl::StrCat(where, "counter names must end in _total"));
  }
  if (type != MetricType::kCounter && ends_in_total) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, "only counter names may end in _total (this is a ",
                     std::string(MetricTypeName(type)), ")"));
  }
  std::set<std::string> seen;
  for (const std::string& label : label_names) {
    if (absl::Status status = ValidateLabelName(label); !status.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(where, status.message()));
    }
    if (type == MetricType::kHistogram && label == "le") {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "label name \"le\" is reserved for histogram buckets"));
    }
    if (!seen.insert(label).second) {
      return absl::InvalidArgumentError(absl::StrCat(where, "label name \"", label, "\" repeated"));
    }
  }
  for (const std::string& exposed : ExposedNames(name, type)) {
    if (sample_names_.count(exposed) > 0) {
      return absl::AlreadyExistsError(
          absl::StrCat(where, "the name ", exposed, " is already taken by another family"));
    }
  }
  return absl::OkStatus();
}

template <typename T>
absl::StatusOr<Family<T>*> Registry::Insert(std::unique_ptr<Family<T>> family) {
  if (absl::Status status =
          Validate(family->name(), family->help(), family->type(), family->label_names());
      !status.ok()) {
    return status;
  }
  Family<T>* result = family.get();
  if (family->label_names().empty()) {
    absl::StatusOr<T*> only_child = result->Add({});
    if (!only_child.ok()) return only_child.status();
  }
  for (const std::string& exposed : ExposedNames(family->name(), family->type())) {
    sample_names_.insert(exposed);
  }
  families_.emplace(family->name(), std::move(family));
  return result;
}

absl::StatusOr<Family<Counter>*> Registry::AddCounterFamily(std::string name, std::string help,
                                                            std::vector<std::string> label_names) {
  absl::MutexLock lock(&mu_);
  return Insert(std::make_unique<Family<Counter>>(std::move(name), std::move(help),
                                                  MetricType::kCounter, std::move(label_names),
                                                  [] { return std::make_unique<Counter>(); }));
}

absl::StatusOr<Family<Gauge>*> Registry::AddGaugeFamily(std::string name, std::string help,
                                                        std::vector<std::string> label_names) {
  absl::MutexLock lock(&mu_);
  return Insert(std::make_unique<Family<Gauge>>(std::move(name), std::move(help),
                                                MetricType::kGauge, std::move(label_names),
                                                [] { return std::make_unique<Gauge>(); }));
}

absl::StatusOr<Family<Histogram>*> Registry::AddHistogramFamily(
    std::string name, std::string help, std::vector<std::string> label_names, BucketBounds bounds) {
  if (absl::Status status = ValidateBucketBounds(bounds, name); !status.ok()) return status;
  auto shared_bounds = std::make_shared<const BucketBounds>(std::move(bounds));
  absl::MutexLock lock(&mu_);
  return Insert(std::make_unique<Family<Histogram>>(
      std::move(name), std::move(help), MetricType::kHistogram, std::move(label_names),
      [shared_bounds] { return std::make_unique<Histogram>(shared_bounds); }));
}

void Registry::AddCollectCallback(std::function<void()> refresh) {
  absl::MutexLock lock(&collect_mu_);
  collect_callbacks_.push_back(std::move(refresh));
}

std::string Registry::Serialize() const {
  {
    absl::MutexLock collect_lock(&collect_mu_);
    for (const std::function<void()>& refresh : collect_callbacks_) refresh();
  }
  absl::ReaderMutexLock lock(&mu_);
  std::string out;
  for (const auto& [name, family] : families_) family->AppendText(&out);
  return out;
}

std::vector<std::string> Registry::FamilyNames() const {
  absl::ReaderMutexLock lock(&mu_);
  std::vector<std::string> names;
  for (const auto& [name, family] : families_) names.push_back(name);
  return names;
}

std::vector<std::string> Registry::SeriesNames() const {
  absl::ReaderMutexLock lock(&mu_);
  std::set<std::string> names;
  for (const auto& [name, family] : families_) {
    for (std::string& series : SeriesNamesOf(name, family->type())) names.insert(std::move(series));
  }
  return std::vector<std::string>(names.begin(), names.end());
}

}  // namespace quantd::metrics
