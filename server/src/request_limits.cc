#include "request_limits.h"

#include "absl/strings/str_cat.h"
#include "bounded_text.h"

namespace quantd::server {
namespace {

absl::Status TooLong(const std::string& field, size_t size, int64_t max, const char* flag) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", size, " bytes, more than the ", max,
                                                 " allowed (quantd ", flag, ")"));
}

}  // namespace

absl::Status CheckSubmitLimits(const v1::SubmitJobRequest& request, const Limits& limits) {
  const v1::JobSpec& spec = request.spec();
  if (spec.has_system_prompt() &&
      static_cast<int64_t>(spec.system_prompt().size()) > limits.max_system_prompt_bytes) {
    return TooLong("spec.system_prompt", spec.system_prompt().size(),
                   limits.max_system_prompt_bytes, "--max-system-prompt-bytes");
  }
  if (spec.labels_size() > limits.max_labels_per_job) {
    return absl::InvalidArgumentError(
        absl::StrCat("spec.labels: ", spec.labels_size(), " labels, more than the ",
                     limits.max_labels_per_job, " allowed (quantd --max-labels-per-job)"));
  }
  for (const auto& [key, value] : spec.labels()) {
    if (static_cast<int64_t>(value.size()) > limits.max_label_value_bytes) {
      return TooLong(absl::StrCat("spec.labels[", Quoted(key, 63), "]"), value.size(),
                     limits.max_label_value_bytes, "--max-label-value-bytes");
    }
  }
  if (spec.modules_to_not_convert().names_size() > limits.max_modules_to_not_convert) {
    return absl::InvalidArgumentError(
        absl::StrCat("spec.modules_to_not_convert: ", spec.modules_to_not_convert().names_size(),
                     " names, more than the ", limits.max_modules_to_not_convert, " allowed"));
  }
  for (const std::string& name : spec.modules_to_not_convert().names()) {
    if (static_cast<int64_t>(name.size()) > limits.max_string_bytes) {
      return TooLong("spec.modules_to_not_convert", name.size(), limits.max_string_bytes,
                     "--max-string-bytes");
    }
  }
  return absl::OkStatus();
}

absl::Status CheckListLimits(const v1::ListJobsRequest& request, const Limits& limits) {
  if (request.labels_size() > limits.max_labels_per_job) {
    return absl::InvalidArgumentError(
        absl::StrCat("labels: ", request.labels_size(), " filters, more than the ",
                     limits.max_labels_per_job, " allowed (quantd --max-labels-per-job)"));
  }
  for (const auto& [key, value] : request.labels()) {
    if (static_cast<int64_t>(key.size() + value.size()) > limits.max_string_bytes) {
      return TooLong("labels", key.size() + value.size(), limits.max_string_bytes,
                     "--max-string-bytes");
    }
  }
  if (static_cast<int64_t>(request.page_token().size()) > limits.max_string_bytes) {
    return TooLong("page_token", request.page_token().size(), limits.max_string_bytes,
                   "--max-string-bytes");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ConcurrencyQuota::Slot>> ConcurrencyQuota::Acquire(
    const std::string& key, int max, const std::string& what, const std::string& flag) {
  std::lock_guard<std::mutex> lock(mu_);
  int& held = held_[key];
  if (held >= max) {
    return absl::ResourceExhaustedError(
        absl::StrCat(what, ": ", held, " already, the limit (quantd ", flag, "=", max, ")"));
  }
  ++held;
  return std::make_unique<Slot>(this, key);
}

int ConcurrencyQuota::held(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = held_.find(key);
  return it == held_.end() ? 0 : it->second;
}

void ConcurrencyQuota::Release(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = held_.find(key);
  if (it != held_.end() && --it->second <= 0) held_.erase(it);
}

}  // namespace quantd::server
