// Validation and defaults of a JobSpec, and what the engine's memory plan needs to know of a job.
// Run by SubmitJob before anything is stored, so a job that is queued can be run.
#ifndef QUANTD_SERVER_JOB_SPEC_VALIDATION_H_
#define QUANTD_SERVER_JOB_SPEC_VALIDATION_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "quantd/memory_plan/memory_plan.h"
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

// The most GPUs one job may ask for (JobSpec.gpus): the most one machine holds (16 in the largest
// single-host systems), so that a typo is an error instead of a job that waits forever.
inline constexpr int32_t kMaxJobGpus = 16;

// What the engine's memory plan (quantd/memory_plan/memory_plan.h, the code the CUDA backend
// chooses its token chunks with) needs of a job: the decoder layer's geometry from the model's
// config.json, and its calibration as blocks of max_seq_len tokens — an upper bound before the
// texts are tokenized: num_calib full blocks at most, and no more tokens than the calibration
// file's bytes / 2 plus, with the chat template, kChatTemplateTokensPerText per text. A job on
// several GPUs splits its blocks across them: `blocks` is the largest share one GPU holds.
struct JobMemoryShape {
  memory_plan::LayerGeometry geometry;
  int64_t blocks = 0;  // per GPU
  int64_t len = 0;
  std::string model;  // "Qwen2ForCausalLM (hidden 896, intermediate 4864)", for messages
};
inline constexpr int64_t kChatTemplateTokensPerText = 256;
absl::StatusOr<JobMemoryShape> JobMemoryShapeOf(const v1::JobSpec& spec);

}  // namespace quantd::server

#endif  // QUANTD_SERVER_JOB_SPEC_VALIDATION_H_
