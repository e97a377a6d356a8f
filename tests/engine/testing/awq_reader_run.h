// Runs the independent numpy reader of AWQ checkpoints (tests/tools/awq_reader.py) and returns its
// relative logits error against the float model. The interpreter and the script can be moved with
// QUANTD_TEST_PYTHON (default /usr/bin/python3, which has numpy here) and QUANTD_TEST_READER
// (default: the source tree's copy): the device machine runs the tests from a bundle.
#ifndef QUANTD_TESTS_ENGINE_TESTING_AWQ_READER_RUN_H_
#define QUANTD_TESTS_ENGINE_TESTING_AWQ_READER_RUN_H_

#include <string>

#include "absl/status/statusor.h"

namespace quantd::engine::testing {

struct AwqReaderRun {
  std::string float_dir;      // The float model.
  std::string calib_jsonl;    // Rows of {"input_ids": [...]}: the tokens the logits are taken on.
  int rows = 4;               // How many of those rows.
  std::string quantized_dir;  // An AWQ GEMM checkpoint; empty: the round-to-nearest baseline.
  int rtn_group_size = 128;   // The baseline's group size (without quantized_dir).
};

// What the reader reports: ‖logits − logits_float‖ / ‖logits_float‖, and the float model's mean
// next-token NLL over the rows (positions 0..len−2), by its own forward pass.
struct AwqReaderResult {
  double relative_logits_error = 0.0;
  double float_nll = 0.0;
};

// Runs the reader; an error naming the command when it fails or prints no such numbers.
absl::StatusOr<AwqReaderResult> RunAwqReader(const AwqReaderRun& run);

// RunAwqReader's relative_logits_error.
absl::StatusOr<double> ReaderRelativeLogitsError(const AwqReaderRun& run);

}  // namespace quantd::engine::testing

#endif  // QUANTD_TESTS_ENGINE_TESTING_AWQ_READER_RUN_H_
