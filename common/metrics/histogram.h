// Counts observations (latencies, sizes) into configurable buckets and keeps their sum. Observe()
// is lock-free: one binary search and two relaxed atomic additions.
#ifndef QUANTD_COMMON_METRICS_HISTOGRAM_H_
#define QUANTD_COMMON_METRICS_HISTOGRAM_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"

namespace quantd::metrics {

// Upper bounds of the buckets, strictly increasing and finite; the +Inf bucket is implicit.
using BucketBounds = std::vector<double>;

// Checks `bounds` (non-empty, finite, strictly increasing) for histogram `metric_name`.
absl::Status ValidateBucketBounds(const BucketBounds& bounds, std::string_view metric_name);

// `count` bounds start, start*factor, start*factor^2, ... (start > 0, factor > 1).
absl::StatusOr<BucketBounds> ExponentialBuckets(double start, double factor, int count);
// `count` bounds start, start+width, ... (width > 0).
absl::StatusOr<BucketBounds> LinearBuckets(double start, double width, int count);

class Histogram {
 public:
  // `bounds` must have passed ValidateBucketBounds; families share one copy among their children.
  explicit Histogram(std::shared_ptr<const BucketBounds> bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  void Observe(double value);

  struct Snapshot {
    BucketBounds bounds;
    std::vector<uint64_t> cumulative_counts;  // one per bound, then one for +Inf (== count)
    double sum = 0.0;
    uint64_t count = 0;
  };
  // Consistent per bucket; concurrent observations may land in the sum before their bucket.
  Snapshot Collect() const;

 private:
  std::shared_ptr<const BucketBounds> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // bounds_->size() + 1 (the +Inf bucket)
  std::atomic<double> sum_{0.0};
};

}  // namespace quantd::metrics

#endif  // QUANTD_COMMON_METRICS_HISTOGRAM_H_
