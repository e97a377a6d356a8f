// Held-out evaluation windows (assets/models/SOURCES.md protocol): the file encoded without special
// tokens, windows i = 0..min(48, ·)−1 with inputs t[512·i .. 512·i+511] and targets
// t[512·i+1 .. 512·i+512]; perplexity = exp(mean NLL over all targets).
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

struct EvalWindows {
  std::vector<std::vector<int32_t>> inputs;
  std::vector<std::vector<int32_t>> targets;
};

absl::StatusOr<EvalWindows> LoadEvalWindows(const std::string& path,
                                            const tokenizer::Tokenizer& tokenizer);

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_PIPELINE_EVAL_WINDOWS_H_
