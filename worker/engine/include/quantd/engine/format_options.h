// The checkpoint formats quantd writes and which quantization choices each of them (and the vLLM
// kernels that serve it) accepts: one set of rules for every entry point — quantize-awq, the
// server's SubmitJob validation and the engine itself — so a combination is refused with the same
// reason wherever it is asked for. docs/compressed-tensors.md gives the sources of each rule.
//
// This library depends on Abseil only: the server links it without the engine.
#ifndef QUANTD_ENGINE_FORMAT_OPTIONS_H_
#define QUANTD_ENGINE_FORMAT_OPTIONS_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace quantd::engine {

// Float type of the non-quantized tensors in the output (and config.json's dtype, which the
// serving engine computes in). kAuto: float16, except for families whose activations overflow
// float16 (Gemma 2/3), which get bfloat16 (docs/architectures.md, "Export dtype"); the engine
// resolves it from the model (ResolveOutputDtype), the server at submit from config.json.
enum class OutputDtype { kAuto, kFloat16, kBFloat16 };
const char* OutputDtypeName(OutputDtype dtype);  // "auto", "float16", "bfloat16"
std::optional<OutputDtype> ParseOutputDtype(std::string_view name);

// The layout of the quantized Linears.
enum class CheckpointFormat {
  kAwqGemm,            // AutoAWQ "GEMM": qweight / qzeros / scales, quant_method "awq"
  kCompressedTensors,  // compressed-tensors "pack-quantized" W4A16: weight_packed / weight_scale /
                       // weight_zero_point / weight_shape, quant_method "compressed-tensors"
};
const char* CheckpointFormatName(CheckpointFormat format);  // "gemm", "compressed-tensors"
std::optional<CheckpointFormat> ParseCheckpointFormat(std::string_view name);

// group_size of per-channel quantization: one group spans a whole row (AutoAWQ's and vLLM's -1).
inline constexpr int kPerChannelGroup = -1;

// What a job asks of the quantized checkpoint.
struct QuantFormat {
  CheckpointFormat format = CheckpointFormat::kAwqGemm;
  int bits = 4;
  int group_size = 128;    // 32, 64, 128 or kPerChannelGroup
  bool zero_point = true;  // false: symmetric (codes −8..7 around zero, no zero points)
  OutputDtype output_dtype = OutputDtype::kFloat16;  // kAuto only before the model is known
  std::optional<OutputDtype> scale_dtype;            // unset: the format's default (ScaleDtypeOf)
};

// float16 for GEMM; the output dtype for compressed-tensors (vLLM loads weight_scale into the
// model's dtype): kAuto while that is unresolved.
OutputDtype ScaleDtypeOf(const QuantFormat& format);

// How the entry point names each field in its messages.
struct QuantFormatFields {
  std::string format = "--format";
  std::string bits = "bits";
  std::string group_size = "--group_size";
  std::string zero_point = "--zero_point";
  std::string output_dtype = "--dtype";
  std::string scale_dtype = "--scale_dtype";
};

// InvalidArgument naming the field and the rule a combination breaks:
//   bits other than 4; a group size other than 32/64/128/-1; GEMM with -1 (AutoAWQ's GEMM needs a
//   group), with zero_point false (WQLinear_GEMM stores zero points) or with bfloat16 scales
//   (WQLinear_GEMM's scales are float16, vLLM's awq kernel computes in float16);
//   compressed-tensors with a scale dtype other than the output dtype (checked once the output
//   dtype is resolved: with kAuto the engine checks again after reading the model).
absl::Status CheckQuantFormat(const QuantFormat& format, const QuantFormatFields& fields = {});

// modules_to_not_convert entries: a plain entry matches a module whose full name contains it
// (AutoAWQ's and vLLM's AWQ rule); "re:<regex>" matches when the ECMAScript regex matches at the
// start of the name (compressed-tensors' re.match). InvalidArgument for an empty entry, a comma or
// a regex that does not compile; `quote` renders the entry in the message (the server passes its
// bounded Quoted(); default: the entry in double quotes).
using QuoteFn = std::string (*)(std::string_view);
absl::Status CheckModulePatterns(const std::vector<std::string>& patterns, std::string_view field,
                                 QuoteFn quote = nullptr);
bool MatchesModulePattern(std::string_view module, std::string_view pattern);

// A perplexity threshold (percent increase of the quantized model over the float one) must be a
// finite number ≥ 0.
absl::Status CheckPerplexityThreshold(double percent, std::string_view field);

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_FORMAT_OPTIONS_H_
