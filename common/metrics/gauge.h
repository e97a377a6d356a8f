// A value that goes up and down (jobs queued, bytes in use). Lock-free.
#ifndef QUANTD_COMMON_METRICS_GAUGE_H_
#define QUANTD_COMMON_METRICS_GAUGE_H_

#include <atomic>

namespace quantd::metrics {

class Gauge {
 public:
  Gauge() = default;
  Gauge(const Gauge&) = delete;
  Gauge& operator=(const Gauge&) = delete;

  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  void Increment(double amount = 1.0) { value_.fetch_add(amount, std::memory_order_relaxed); }
  void Decrement(double amount = 1.0) { value_.fetch_sub(amount, std::memory_order_relaxed); }
  // Raises the gauge to `value` if it is higher (a high-water mark such as peak memory).
  void SetToMax(double value) {
    double current = value_.load(std::memory_order_relaxed);
    while (value > current &&
           !value_.compare_exchange_weak(current, value, std::memory_order_relaxed)) {
    }
  }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

}  // namespace quantd::metrics

#endif  // QUANTD_COMMON_METRICS_GAUGE_H_
