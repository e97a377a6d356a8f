// Held-out evaluation windows. --eval_text (assets/models/SOURCES.md protocol): the file encoded
// without special tokens, windows i = 0..min(48, ·)−1 with inputs t[512·i .. 512·i+511] and
// targets t[512·i+1 .. 512·i+512]. By default: the calibration file's held-out rows
// (calib/calibration.h), prepared as calibration rows are, in windows of the calibration block
// length (shorter when they hold fewer tokens). Perplexity = exp(mean NLL over all targets).
#ifndef QUANTD_ENGINE_PIPELINE_EVAL_WINDOWS_H_
#define QUANTD_ENGINE_PIPELINE_EVAL_WINDOWS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "quantd/tokenizer/tokenizer.h"

namespace quantd::engine {

inline constexpr int kEvalWindowTokens = 512;
inline constexpr int kEvalMaxWindows = 48;
// Bounds the held-out activations (two copies of tokens × hidden float32 on the device).
inline constexpr int64_t kHeldOutMaxTokens = 32768;

struct EvalWindows {
  std::vector<std::vector<int32_t>> inputs;
  std::vector<std::vector<int32_t>> targets;
  int64_t tokens_scored() const {
    return inputs.empty() ? 0 : static_cast<int64_t>(inputs.size() * inputs.front().size());
  }
};

// Windows of length min(block_len, n − 1) over the held-out tokens `ids`, at most
// kHeldOutMaxTokens inputs in all; none when fewer than 2 tokens.
EvalWindows HeldOutWindows(const std::vector<int32_t>& ids, int64_t block_len);

absl::StatusOr<EvalWindows> LoadEvalWindows(const std::string& path,
                                            const tokenizer::Tokenizer& tokenizer);

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_PIPELINE_EVAL_WINDOWS_H_
