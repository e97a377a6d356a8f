// InstrumentedJobStore: a JobStore that times every operation of the store it wraps into
// quantd_store_operation_duration_seconds{operation} and watches its health: after an operation
// fails the way a broken store fails (I/O error, corruption, disk full), Health() says so until an
// operation succeeds again. The server's readiness (/readyz and gRPC health) is built on it.
//
// Thread-safety: as thread-safe as the wrapped store; the bookkeeping is atomic or locked.
#ifndef QUANTD_SERVER_STORE_INSTRUMENTED_JOB_STORE_H_
#define QUANTD_SERVER_STORE_INSTRUMENTED_JOB_STORE_H_

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "metrics/quantd_metrics.h"
#include "store/job_store.h"

namespace quantd::server {

class InstrumentedJobStore : public JobStore {
 public:
  // `metrics` must outlive the store. `on_health_change(healthy)` runs (with no lock of this store
  // held) when Health() turns from OK to an error or back.
  InstrumentedJobStore(std::unique_ptr<JobStore> store, metrics::ServerMetrics& metrics,
                       std::function<void(bool healthy)> on_health_change = {});

  // OK, or the error of the latest operation when it failed like a broken store.
  absl::Status Health() const;

  absl::Status CreateJob(JobRecord& record, std::vector<v1::JobEvent>& events) override;
  absl::StatusOr<JobRecord> GetJob(const std::string& job_id) override;
  absl::StatusOr<JobRecord> FindByRequestId(const std::string& request_id) override;
  absl::Status UpdateJob(JobRecord& record, std::vector<v1::JobEvent>& events) override;
  absl::StatusOr<JobPage> ListJobs(const ListJobsQuery& query) override;
  absl::StatusOr<std::vector<v1::JobEvent>> ReadEvents(const std::string& job_id,
                                                       int64_t after_sequence, int limit) override;
  absl::StatusOr<std::vector<JobRecord>> ListUnfinishedJobs() override;

 private:
  enum Operation {
    kCreateJob,
    kGetJob,
    kFindByRequestId,
    kUpdateJob,
    kListJobs,
    kReadEvents,
    kListUnfinishedJobs,
    kOperationCount
  };
  // Runs `call`, observes its latency under `operation` and records its status.
  template <typename Call>
  auto Timed(Operation operation, Call&& call);
  void Record(const absl::Status& status);

  std::unique_ptr<JobStore> store_;
  metrics::Histogram* latency_[kOperationCount];
  std::function<void(bool)> on_health_change_;
  mutable std::mutex mu_;
  absl::Status health_;
};

}  // namespace quantd::server

#endif  // QUANTD_SERVER_STORE_INSTRUMENTED_JOB_STORE_H_
