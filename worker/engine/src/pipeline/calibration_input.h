// The calibration blocks the pipeline feeds to layer 0 (spec/awq.md §1), and the held-out windows
// of the perplexity evaluation (assets/models/SOURCES.md protocol).
//
// Interim: this reads pre-tokenized rows ({"input_ids": [...]}) and plain texts through the model's
// tokenizer without chat wrapping; the full calibration of issue 4 (reservoir sampling, chat
// template, skip counters) lives in calib/ (branch engio) and replaces LoadCalibrationBlocks when
// merged.
#ifndef QUANTD_ENGINE_PIPELINE_CALIBRATION_INPUT_H_
#define QUANTD_ENGINE_PIPELINE_CALIBRATION_INPUT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "quantd/engine/quantize.h"
#include "quantd/tokenizer/tokenizer.h"

namespace quantd::engine {

struct CalibrationBlocks {
  int64_t seq_len = 0;
  std::vector<std::vector<int32_t>> blocks;  // each seq_len tokens
  int64_t rows_read = 0;
  int64_t rows_skipped = 0;  // blank, unparsable, non-object, no text / input_ids
  int64_t texts_used = 0;
  int64_t texts_too_long = 0;  // more than seq_len tokens: skipped
  int64_t tokens = 0;          // concatenated tokens before the cut
};

// True when the file's first valid row is pre-tokenized (then no tokenizer is needed).
absl::StatusOr<bool> CalibrationIsPreTokenized(const std::string& path);

// Reads up to num_calib rows in file order, encodes texts (stripped, special tokens added),
// skips over-long ones, concatenates and cuts into blocks of max_seq_len. `tokenizer` may be null
// for pre-tokenized files.
absl::StatusOr<CalibrationBlocks> LoadCalibrationBlocks(const QuantizeOptions& options,
                                                        const tokenizer::Tokenizer* tokenizer);

// Held-out evaluation: the file encoded without special tokens, windows i = 0..min(48, ·) of
// `window` inputs t[w·i .. w·i+w−1] and targets t[w·i+1 .. w·i+w].
struct EvalWindows {
  std::vector<std::vector<int32_t>> inputs;
  std::vector<std::vector<int32_t>> targets;
};
inline constexpr int kEvalWindowTokens = 512;
inline constexpr int kEvalMaxWindows = 48;
absl::StatusOr<EvalWindows> LoadEvalWindows(const std::string& path,
                                            const tokenizer::Tokenizer& tokenizer);

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_PIPELINE_CALIBRATION_INPUT_H_
