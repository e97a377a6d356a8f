#include "quantd/engine/format_options.h"

#include <cmath>
#include <regex>

#include "absl/strings/str_cat.h"

namespace quantd::engine {
namespace {

absl::Status Refuse(const std::string& field, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

}  // namespace

const char* OutputDtypeName(OutputDtype dtype) {
  switch (dtype) {
    case OutputDtype::kAuto:
      return "auto";
    case OutputDtype::kBFloat16:
      return "bfloat16";
    case OutputDtype::kFloat16:
      break;
  }
  return "float16";
}

std::optional<OutputDtype> ParseOutputDtype(std::string_view name) {
  if (name == "auto") return OutputDtype::kAuto;
  if (name == "float16") return OutputDtype::kFloat16;
  if (name == "bfloat16") return OutputDtype::kBFloat16;
  return std::nullopt;
}

const char* CheckpointFormatName(CheckpointFormat format) {
  return format == CheckpointFormat::kCompressedTensors ? "compressed-tensors" : "gemm";
}

std::optional<CheckpointFormat> ParseCheckpointFormat(std::string_view name) {
  if (name == "gemm" || name == "GEMM" || name == "awq") return CheckpointFormat::kAwqGemm;
  if (name == "compressed-tensors" || name == "pack-quantized") {
    return CheckpointFormat::kCompressedTensors;
  }
  return std::nullopt;
}

OutputDtype ScaleDtypeOf(const QuantFormat& f) {
  if (f.scale_dtype.has_value()) return *f.scale_dtype;
  return f.format == CheckpointFormat::kCompressedTensors ? f.output_dtype : OutputDtype::kFloat16;
}

absl::Status CheckQuantFormat(const QuantFormat& f, const QuantFormatFields& n) {
  if (f.bits != 4) {
    return Refuse(n.bits,
                  absl::StrCat(f.bits, " is not 4 (only 4-bit weights, W4A16, are written)"));
  }
  if (f.group_size != 32 && f.group_size != 64 && f.group_size != 128 &&
      f.group_size != kPerChannelGroup) {
    return Refuse(n.group_size,
                  absl::StrCat(f.group_size,
                               " is not one of 32, 64, 128 or -1 (per-channel): the sizes vLLM's "
                               "Marlin kernels implement"));
  }
  const OutputDtype scale = ScaleDtypeOf(f);
  if (f.format == CheckpointFormat::kAwqGemm) {
    if (f.group_size == kPerChannelGroup) {
      return Refuse(n.group_size,
                    absl::StrCat("-1 (per-channel) needs ", n.format,
                                 " compressed-tensors: AutoAWQ's GEMM format has no per-channel "
                                 "form (its scale search normalises weights per group and "
                                 "WQLinear_GEMM's kernels need a group size)"));
    }
    if (!f.zero_point) {
      return Refuse(n.zero_point,
                    absl::StrCat("false (symmetric) needs ", n.format,
                                 " compressed-tensors: AutoAWQ's GEMM format stores a zero point "
                                 "per group (WQLinear_GEMM has no symmetric form)"));
    }
    if (scale == OutputDtype::kBFloat16) {
      return Refuse(n.scale_dtype,
                    absl::StrCat("bfloat16 needs ", n.format,
                                 " compressed-tensors: AutoAWQ's GEMM format stores float16 "
                                 "scales and vLLM's awq GEMM kernel computes in float16"));
    }
    return absl::OkStatus();
  }
  if (f.output_dtype != OutputDtype::kAuto && scale != f.output_dtype) {
    return Refuse(n.scale_dtype,
                  absl::StrCat(OutputDtypeName(scale), " with ", n.output_dtype, " ",
                               OutputDtypeName(f.output_dtype),
                               ": vLLM loads compressed-tensors' weight_scale into the model's "
                               "dtype, so the scales must be in the checkpoint's dtype (set ",
                               n.output_dtype, " ", OutputDtypeName(scale), ")"));
  }
  return absl::OkStatus();
}

absl::Status CheckModulePatterns(const std::vector<std::string>& patterns, std::string_view field,
                                 QuoteFn quote) {
  auto quoted = [quote](const std::string& p) {
    return quote != nullptr ? quote(p) : absl::StrCat("\"", p, "\"");
  };
  for (const std::string& p : patterns) {
    if (p.empty() || p.find(',') != std::string::npos) {
      return Refuse(std::string(field), absl::StrCat(quoted(p),
                                                     " is not a module name or pattern (expected a "
                                                     "substring of module names or re:<regex>)"));
    }
    if (p.rfind("re:", 0) == 0) {
      try {
        std::regex re(p.substr(3), std::regex::ECMAScript);
      } catch (const std::regex_error& e) {
        return Refuse(std::string(field),
                      absl::StrCat(quoted(p), ": the regex does not compile (", e.what(), ")"));
      }
    }
  }
  return absl::OkStatus();
}

bool MatchesModulePattern(std::string_view module, std::string_view pattern) {
  if (pattern.empty()) return false;
  if (pattern.rfind("re:", 0) == 0) {
    try {
      const std::regex re(std::string(pattern.substr(3)), std::regex::ECMAScript);
      return std::regex_search(module.begin(), module.end(), re,
                               std::regex_constants::match_continuous);
    } catch (const std::regex_error&) {
      return false;  // CheckModulePatterns refuses these before any work
    }
  }
  return module.find(pattern) != std::string_view::npos;
}

absl::Status CheckPerplexityThreshold(double percent, std::string_view field) {
  if (!std::isfinite(percent) || percent < 0.0) {
    return Refuse(std::string(field),
                  absl::StrCat(percent,
                               " is not a percentage ≥ 0 (the largest perplexity "
                               "increase of the quantized model allowed)"));
  }
  return absl::OkStatus();
}

}  // namespace quantd::engine
