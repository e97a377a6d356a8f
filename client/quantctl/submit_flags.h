// quantctl submit's flags: one per JobSpec field, turned into a SubmitJobRequest. Unset flags leave
// the field unset, so the server's defaults apply. Relative paths are made absolute against the
// current directory.
#ifndef QUANTD_CLIENT_QUANTCTL_SUBMIT_FLAGS_H_
#define QUANTD_CLIENT_QUANTCTL_SUBMIT_FLAGS_H_

#include <optional>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "quantd/v1/quantization_service.pb.h"

namespace quantd::quantctl {

struct SubmitFlags {
  std::string model_dir, output_dir, calib_jsonl, eval_text, request_id;
  std::optional<int> num_calib, max_seq_len, bits, group_size, priority, gpus;
  std::optional<bool> zero_point, apply_chat_template, chat_template_fallback;
  std::optional<std::string> system_prompt, dtype, modules_to_not_convert, format, scale_dtype;
  std::optional<uint64_t> seed;
  std::optional<double> max_ppl_increase;
  std::vector<std::string> labels;  // key=value
};

void AddSubmitFlags(CLI::App* submit, SubmitFlags* flags);
absl::Status BuildSubmitRequest(const SubmitFlags& flags, v1::SubmitJobRequest* request);
absl::Status BuildListRequest(const std::vector<std::string>& states,
                              const std::vector<std::string>& labels, int page_size,
                              v1::ListJobsRequest* request);

}  // namespace quantd::quantctl

#endif  // QUANTD_CLIENT_QUANTCTL_SUBMIT_FLAGS_H_
