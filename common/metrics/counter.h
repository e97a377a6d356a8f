// A monotonically increasing value (requests served, jobs finished). Lock-free.
#ifndef QUANTD_COMMON_METRICS_COUNTER_H_
#define QUANTD_COMMON_METRICS_COUNTER_H_

#include <atomic>

namespace quantd::metrics {

class Counter {
 public:
  Counter() = default;
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;

  void Increment() { value_.fetch_add(1.0, std::memory_order_relaxed); }
  // Negative, NaN or infinite amounts are ignored: a counter never goes down.
  void Increment(double amount) {
    if (amount > 0.0 && amount < kInfinity) value_.fetch_add(amount, std::memory_order_relaxed);
  }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  static constexpr double kInfinity = __builtin_huge_val();
  std::atomic<double> value_{0.0};
};

}  // namespace quantd::metrics

#endif  // QUANTD_COMMON_METRICS_COUNTER_H_
