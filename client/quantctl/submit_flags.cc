#include "submit_flags.h"

#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace quantd::quantctl {
namespace {

std::string Absolute(const std::string& path) {
  if (path.empty()) return path;
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::absolute(path, ec);
  return ec ? path : absolute.lexically_normal().string();
}

absl::Status ParseLabels(const std::vector<std::string>& labels, const std::string& flag,
                         google::protobuf::Map<std::string, std::string>* out) {
  for (const std::string& label : labels) {
    std::vector<std::string> kv = absl::StrSplit(label, absl::MaxSplits('=', 1));
    if (kv.size() != 2 || kv[0].empty()) {
      return absl::InvalidArgumentError(absl::StrCat(flag, ": \"", label, "\" is not key=value"));
    }
    (*out)[kv[0]] = kv[1];
  }
  return absl::OkStatus();
}

}  // namespace

void AddSubmitFlags(CLI::App* submit, SubmitFlags* f) {
  submit->add_option("--model-dir", f->model_dir, "Hugging Face model directory")->required();
  submit->add_option("--output-dir", f->output_dir, "Where the checkpoint is written")->required();
  submit->add_option("--calib-jsonl", f->calib_jsonl, "Calibration JSON-lines file")->required();
  submit->add_option("--num-calib", f->num_calib, "Calibration texts sampled (default 8192)");
  submit->add_option("--max-seq-len", f->max_seq_len,
                     "Tokens per calibration block (default 2048)");
  submit->add_option("--bits", f->bits, "Weight bits (4)");
  submit->add_option("--group-size", f->group_size,
                     "32, 64, 128 or -1 (per-channel, compressed-tensors) (default 128)");
  submit->add_option(
      "--zero-point", f->zero_point,
      "Asymmetric quantization (default true; false = symmetric, compressed-tensors)");
  submit->add_option("--format", f->format, "gemm or compressed-tensors (default gemm)")
      ->check(CLI::IsMember({"gemm", "compressed-tensors"}));
  submit
      ->add_option("--scale-dtype", f->scale_dtype,
                   "float16 or bfloat16 (default: float16 for gemm, --dtype for "
                   "compressed-tensors)")
      ->check(CLI::IsMember({"float16", "bfloat16"}));
  submit->add_option("--max-ppl-increase", f->max_ppl_increase,
                     "Fail when the held-out perplexity rises by more than this many percent");
  submit->add_option("--chat-template-fallback", f->chat_template_fallback,
                     "Wrap texts as ChatML if the model's chat template does not parse (default: "
                     "the job fails)");
  submit->add_option("--apply-chat-template", f->apply_chat_template,
                     "Wrap calibration texts with the chat template (default true)");
  submit->add_option("--system-prompt", f->system_prompt,
                     "System message (default: the seed prompt; \"\" for none)");
  submit->add_option("--seed", f->seed, "Sampling seed (default 42)");
  submit
      ->add_option("--dtype", f->dtype,
                   "float16 or bfloat16 (default: float16, bfloat16 for Gemma 2/3)")
      ->check(CLI::IsMember({"float16", "bfloat16"}));
  submit->add_option("--eval-text", f->eval_text,
                     "Held-out text for the quality report (default: a slice of the calibration "
                     "file)");
  submit->add_option("--modules-to-not-convert", f->modules_to_not_convert,
                     "Comma-separated module paths or re:<regex> kept in float (default lm_head; "
                     "\"\" = none)");
  submit->add_option("--priority", f->priority, "Higher runs first (-1000..1000)");
  submit->add_option("--gpus", f->gpus,
                     "GPUs of one worker the job runs on, calibration split across them "
                     "(default 1; 1..16)");
  submit->add_option("--label", f->labels, "key=value label (repeatable)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  submit->add_option("--request-id", f->request_id, "Idempotency key: retries return the same job");
}

absl::Status BuildSubmitRequest(const SubmitFlags& f, v1::SubmitJobRequest* request) {
  v1::JobSpec* spec = request->mutable_spec();
  spec->set_model_dir(Absolute(f.model_dir));
  spec->set_output_dir(Absolute(f.output_dir));
  spec->set_calib_jsonl(Absolute(f.calib_jsonl));
  spec->set_eval_text(Absolute(f.eval_text));
  if (f.num_calib) spec->set_num_calib(*f.num_calib);
  if (f.max_seq_len) spec->set_max_seq_len(*f.max_seq_len);
  if (f.bits) spec->set_bits(*f.bits);
  if (f.group_size) spec->set_group_size(*f.group_size);
  if (f.zero_point) spec->set_zero_point(*f.zero_point);
  if (f.apply_chat_template) spec->set_apply_chat_template(*f.apply_chat_template);
  if (f.chat_template_fallback) spec->set_chat_template_fallback(*f.chat_template_fallback);
  if (f.system_prompt) spec->set_system_prompt(*f.system_prompt);
  if (f.seed) spec->set_seed(*f.seed);
  if (f.dtype) {
    spec->set_output_dtype(*f.dtype == "bfloat16" ? v1::OUTPUT_DTYPE_BFLOAT16
                                                  : v1::OUTPUT_DTYPE_FLOAT16);
  }
  if (f.format) {
    spec->set_layout(*f.format == "compressed-tensors" ? v1::WEIGHT_LAYOUT_COMPRESSED_TENSORS
                                                       : v1::WEIGHT_LAYOUT_GEMM);
  }
  if (f.scale_dtype) {
    spec->set_scale_dtype(*f.scale_dtype == "bfloat16" ? v1::OUTPUT_DTYPE_BFLOAT16
                                                       : v1::OUTPUT_DTYPE_FLOAT16);
  }
  if (f.max_ppl_increase) spec->set_max_perplexity_increase_percent(*f.max_ppl_increase);
  if (f.modules_to_not_convert) {
    v1::ModuleList* modules = spec->mutable_modules_to_not_convert();
    for (absl::string_view name :
         absl::StrSplit(*f.modules_to_not_convert, ',', absl::SkipEmpty())) {
      modules->add_names(std::string(name));
    }
  }
  if (f.priority) spec->set_priority(*f.priority);
  if (f.gpus) spec->set_gpus(*f.gpus);
  request->set_request_id(f.request_id);
  return ParseLabels(f.labels, "--label", spec->mutable_labels());
}

absl::Status BuildListRequest(const std::vector<std::string>& states,
                              const std::vector<std::string>& labels, int page_size,
                              v1::ListJobsRequest* request) {
  for (const std::string& state : states) {
    v1::JobState value;
    if (!v1::JobState_Parse("JOB_STATE_" + absl::AsciiStrToUpper(state), &value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--state: \"", state, "\" is not a job state"));
    }
    request->add_states(value);
  }
  request->set_page_size(page_size);
  return ParseLabels(labels, "--label", request->mutable_labels());
}

}  // namespace quantd::quantctl
