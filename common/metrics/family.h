// A family is one metric name with its help text and label names; each distinct set of label
// values is one child (a Counter, Gauge or Histogram). Look a child up once with Add() and keep
// the pointer: children live as long as the family, and updating them takes no lock.
#ifndef QUANTD_COMMON_METRICS_FAMILY_H_
#define QUANTD_COMMON_METRICS_FAMILY_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "metrics/counter.h"
#include "metrics/gauge.h"
#include "metrics/histogram.h"
#include "metrics/text_format.h"

namespace quantd::metrics {

// Label name -> value, e.g. {{"method", "SubmitJob"}, {"code", "OK"}}.
using Labels = std::map<std::string, std::string>;

enum class MetricType { kCounter, kGauge, kHistogram };
std::string_view MetricTypeName(MetricType type);

// What every family shares, independent of its child type.
class FamilyBase {
 public:
  FamilyBase(std::string name, std::string help, MetricType type,
             std::vector<std::string> label_names);
  virtual ~FamilyBase() = default;
  FamilyBase(const FamilyBase&) = delete;
  FamilyBase& operator=(const FamilyBase&) = delete;

  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  MetricType type() const { return type_; }
  const std::vector<std::string>& label_names() const { return label_names_; }

  // Appends HELP, TYPE and every child's samples, children ordered by their label values.
  // Families without children write nothing.
  virtual void AppendText(std::string* out) const = 0;

 protected:
  // The values of `labels` in label_names() order; an error unless the label names match exactly
  // and every value is valid UTF-8.
  absl::StatusOr<std::vector<std::string>> LabelValuesOf(const Labels& labels) const;

 private:
  std::string name_;
  std::string help_;
  MetricType type_;
  std::vector<std::string> label_names_;
};

template <typename T>
class Family final : public FamilyBase {
 public:
  Family(std::string name, std::string help, MetricType type, std::vector<std::string> label_names,
         std::function<std::unique_ptr<T>()> make_child)
      : FamilyBase(std::move(name), std::move(help), type, std::move(label_names)),
        make_child_(std::move(make_child)) {}

  // The child for `labels`, created on first use. Thread-safe; returns the same pointer for the
  // same label values.
  absl::StatusOr<T*> Add(const Labels& labels) {
    absl::StatusOr<std::vector<std::string>> values = LabelValuesOf(labels);
    if (!values.ok()) return values.status();
    {
      absl::ReaderMutexLock lock(&mu_);
      auto it = children_.find(*values);
      if (it != children_.end()) return it->second.get();
    }
    absl::MutexLock lock(&mu_);
    std::unique_ptr<T>& child = children_[*std::move(values)];
    if (child == nullptr) child = make_child_();
    return child.get();
  }

  void AppendText(std::string* out) const override {
    absl::ReaderMutexLock lock(&mu_);
    if (children_.empty()) return;
    AppendHeader(out, name(), help(), MetricTypeName(type()));
    for (const auto& [values, child] : children_) {
      AppendSamples(out, name(), label_names(), values, *child);
    }
  }

 private:
  std::function<std::unique_ptr<T>()> make_child_;
  mutable absl::Mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<T>> children_ ABSL_GUARDED_BY(mu_);
};

}  // namespace quantd::metrics

#endif  // QUANTD_COMMON_METRICS_FAMILY_H_
