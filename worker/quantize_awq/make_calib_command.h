// `quantize-awq make-calib TEXT_FILE`: turns a plain text file into a calibration file, one
// {"text": ...} row per paragraph (docs/engine.md, "Calibration file").
#ifndef QUANTD_QUANTIZE_AWQ_MAKE_CALIB_COMMAND_H_
#define QUANTD_QUANTIZE_AWQ_MAKE_CALIB_COMMAND_H_

#include <cstdio>
#include <istream>
#include <string>
#include <vector>

namespace quantd::quantize_awq {

// Writes one JSON line {"text": paragraph} to `out` per paragraph of `in`: a run of non-blank
// lines, each stripped of surrounding whitespace and joined with one space (hard-wrapped prose
// becomes one line of text). Invalid UTF-8 becomes U+FFFD. Returns the number of rows written.
int64_t WriteCalibrationRows(std::istream& in, std::FILE* out);

// Runs the subcommand with `args` (the words after "make-calib"). Returns the exit code: 0 when at
// least one row was written, 1 when the file cannot be read or holds no text, 2 for a usage error.
int RunMakeCalib(const std::vector<std::string>& args, std::FILE* out, std::FILE* err);

}  // namespace quantd::quantize_awq

#endif  // QUANTD_QUANTIZE_AWQ_MAKE_CALIB_COMMAND_H_
