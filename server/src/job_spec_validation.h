// Validation and defaults of a JobSpec, and the GPU memory a job is expected to need. Run by
// SubmitJob before anything is stored, so a job that is queued can be run.
#ifndef QUANTD_SERVER_JOB_SPEC_VALIDATION_H_
#define QUANTD_SERVER_JOB_SPEC_VALIDATION_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "quantd/v1/job.pb.h"

namespace quantd::server {

// Absolute directories every path of a spec must lie in (after resolving symlinks). Empty = any
// absolute path.
struct PathPolicy {
  std::vector<std::string> allowed_roots;
};

// Checks `spec` and fills every unset field with its default (system_prompt excepted: unset means
// the engine's built-in seed prompt, which only the engine knows). Errors are INVALID_ARGUMENT and
// name the field ("spec.group_size: 96 is not one of 32, 64, 128").
absl::Status ValidateAndFillSpec(const PathPolicy& policy, v1::JobSpec& spec);

// Peak GPU memory of the AWQ engine for a validated spec, from the model's config.json and the
// calibration size. A deliberately generous estimate; see the .cc for the formula.
absl::StatusOr<int64_t> EstimateGpuMemoryBytes(const v1::JobSpec& spec);

}  // namespace quantd::server

#endif  // QUANTD_SERVER_JOB_SPEC_VALIDATION_H_
