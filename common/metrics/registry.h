// The set of metric families a process exports, and their text exposition. Registration validates
// names (Prometheus data model plus our conventions, so that `promtool check metrics` is clean):
//   - counters end in "_total", other types do not;
//   - help text is required;
//   - no two families produce the same sample name (a histogram "x" owns x_bucket, x_sum, x_count).
#ifndef QUANTD_COMMON_METRICS_REGISTRY_H_
#define QUANTD_COMMON_METRICS_REGISTRY_H_

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "metrics/family.h"

namespace quantd::metrics {

class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // The returned family lives as long as the registry. A family without label names gets its one
  // child at once, so it is exported (as zero) before its first update.
  absl::StatusOr<Family<Counter>*> AddCounterFamily(std::string name, std::string help,
                                                    std::vector<std::string> label_names = {});
  absl::StatusOr<Family<Gauge>*> AddGaugeFamily(std::string name, std::string help,
                                                std::vector<std::string> label_names = {});
  absl::StatusOr<Family<Histogram>*> AddHistogramFamily(std::string name, std::string help,
                                                        std::vector<std::string> label_names,
                                                        BucketBounds bounds);

  // Runs `refresh` at the start of every Serialize(), before any value is read: the place to copy
  // state kept elsewhere (queue lengths, connected workers) into gauges at scrape time. Callbacks
  // run one scrape at a time, in the order added; they must not call Serialize().
  void AddCollectCallback(std::function<void()> refresh);

  // Every family in the text exposition format 0.0.4, ordered by metric name.
  std::string Serialize() const;

  // Names of the registered families (for tests and tooling that check dashboards).
  std::vector<std::string> FamilyNames() const;
  // Every series name the families can expose (a histogram "x": x_bucket, x_sum, x_count), sorted;
  // labelled families count even before their first child exists.
  std::vector<std::string> SeriesNames() const;

 private:
  absl::Status Validate(const std::string& name, const std::string& help, MetricType type,
                        const std::vector<std::string>& label_names) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  template <typename T>
  absl::StatusOr<Family<T>*> Insert(std::unique_ptr<Family<T>> family)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex collect_mu_;  // serializes the callbacks of concurrent scrapes
  std::vector<std::function<void()>> collect_callbacks_ ABSL_GUARDED_BY(collect_mu_);
  mutable absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<FamilyBase>> families_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> sample_names_ ABSL_GUARDED_BY(mu_);
};

}  // namespace quantd::metrics

#endif  // QUANTD_COMMON_METRICS_REGISTRY_H_
