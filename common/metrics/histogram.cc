#include "metrics/histogram.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"

namespace quantd::metrics {

absl::Status ValidateBucketBounds(const BucketBounds& bounds, std::string_view metric_name) {
  std::string where = absl::StrCat("histogram \"", std::string(metric_name), "\": ");
  if (bounds.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(where, "needs at least one bucket bound"));
  }
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "bucket bound ", i, " is not finite (+Inf is implicit)"));
    }
    if (i > 0 && !(bounds[i] > bounds[i - 1])) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, "bucket bounds must increase strictly; ", bounds[i], " follows ", bounds[i - 1]));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<BucketBounds> ExponentialBuckets(double start, double factor, int count) {
  if (!(start > 0.0) || !(factor > 1.0) || count < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ExponentialBuckets: need start > 0, factor > 1, count >= 1; got start=", start,
        " factor=", factor, " count=", count));
  }
  BucketBounds bounds;
  double bound = start;
  for (int i = 0; i < count; ++i, bound *= factor) bounds.push_back(bound);
  return bounds;
}

absl::StatusOr<BucketBounds> LinearBuckets(double start, double width, int count) {
  if (!std::isfinite(start) || !(width > 0.0) || count < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("LinearBuckets: need finite start, width > 0, count >= 1; got start=", start,
                     " width=", width, " count=", count));
  }
  BucketBounds bounds;
  for (int i = 0; i < count; ++i) bounds.push_back(start + width * i);
  return bounds;
}

Histogram::Histogram(std::shared_ptr<const BucketBounds> bounds)
    : bounds_(std::move(bounds)), counts_(new std::atomic<uint64_t>[bounds_->size() + 1]) {
  for (size_t i = 0; i <= bounds_->size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(double value) {
  // The first bound >= value ("le" is inclusive); NaN and values above every bound go to +Inf.
  size_t index = bounds_->size();
  if (!std::isnan(value)) {
    index = std::lower_bound(bounds_->begin(), bounds_->end(), value) - bounds_->begin();
  }
  counts_[index].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Collect() const {
  Snapshot snapshot;
  snapshot.bounds = *bounds_;
  snapshot.cumulative_counts.resize(bounds_->size() + 1);
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_->size(); ++i) {
    running += counts_[i].load(std::memory_order_relaxed);
    snapshot.cumulative_counts[i] = running;
  }
  snapshot.count = running;
  snapshot.sum = sum_.load(std::memory_order_relaxed);
  return snapshot;
}

}  // namespace quantd::metrics
