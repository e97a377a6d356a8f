// ServiceCounters: what the server counts about itself, updated by the JobManager and the gRPC
// glue. It is the seam for metrics: an exporter (e.g. Prometheus /metrics) reads these atomics;
// nothing here depends on one.
#ifndef QUANTD_SERVER_SERVICE_COUNTERS_H_
#define QUANTD_SERVER_SERVICE_COUNTERS_H_

#include <atomic>
#include <cstdint>

namespace quantd::server {

struct ServiceCounters {
  // Monotone counters.
  std::atomic<int64_t> jobs_submitted{0};
  std::atomic<int64_t> jobs_succeeded{0};
  std::atomic<int64_t> jobs_failed{0};
  std::atomic<int64_t> jobs_cancelled{0};
  std::atomic<int64_t> jobs_requeued{0};
  std::atomic<int64_t> events_stored{0};
  std::atomic<int64_t> requests_rejected{0};  // INVALID_ARGUMENT answers.
  // Gauges.
  std::atomic<int64_t> jobs_queued{0};
  std::atomic<int64_t> jobs_running{0};  // ASSIGNED, RUNNING or CANCELLING.
  std::atomic<int64_t> watchers{0};
  std::atomic<int64_t> workers_connected{0};
};

}  // namespace quantd::server

#endif  // QUANTD_SERVER_SERVICE_COUNTERS_H_
