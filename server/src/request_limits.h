// Limits on what one request and one principal or tenant may ask of quantd, all configurable
// (quantd --max-*). Sizes of request fields are INVALID_ARGUMENT naming the field (bad input);
// quotas (watchers per principal, queued jobs per tenant) and the request size are
// RESOURCE_EXHAUSTED naming the limit and its flag.
#ifndef QUANTD_SERVER_REQUEST_LIMITS_H_
#define QUANTD_SERVER_REQUEST_LIMITS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "quantd/v1/quantization_service.pb.h"

namespace quantd::server {

struct Limits {
  int64_t max_request_bytes = 4 << 20;         // Any request message (gRPC receive limit).
  int64_t max_system_prompt_bytes = 64 << 10;  // spec.system_prompt.
  int64_t max_string_bytes = 1024;             // Other strings: module names, label filters.
  int64_t max_label_value_bytes = 256;         // spec.labels values (keys: 63, fixed).
  int max_labels_per_job = 32;
  int max_modules_to_not_convert = 256;
  int max_watchers_per_principal = 64;    // Concurrent WatchJob streams.
  int max_queued_jobs_per_tenant = 1000;  // Jobs in QUEUED.
};

// Field sizes of a SubmitJob request (paths are checked by path_check.h).
absl::Status CheckSubmitLimits(const v1::SubmitJobRequest& request, const Limits& limits);
// Field sizes of a ListJobs request.
absl::Status CheckListLimits(const v1::ListJobsRequest& request, const Limits& limits);

// Counts concurrent holders per key (e.g. watchers per principal). A Slot releases on destruction.
class ConcurrencyQuota {
 public:
  class Slot;
  // RESOURCE_EXHAUSTED naming `what` and `flag` when `key` already holds `max` slots.
  absl::StatusOr<std::unique_ptr<Slot>> Acquire(const std::string& key, int max,
                                                const std::string& what, const std::string& flag);
  int held(const std::string& key) const;

 private:
  void Release(const std::string& key);
  mutable std::mutex mu_;
  std::map<std::string, int> held_;
};

class ConcurrencyQuota::Slot {
 public:
  Slot(ConcurrencyQuota* quota, std::string key) : quota_(quota), key_(std::move(key)) {}
  ~Slot() { quota_->Release(key_); }
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;

 private:
  ConcurrencyQuota* quota_;
  std::string key_;
};

}  // namespace quantd::server

#endif  // QUANTD_SERVER_REQUEST_LIMITS_H_
