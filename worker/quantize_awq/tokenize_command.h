// `quantize-awq tokenize`: reads JSON lines {"text": ...} and writes, per line, the token ids (or
// with
// --render the rendered chat text) exactly as calibration would use them.
#ifndef QUANTD_QUANTIZE_AWQ_TOKENIZE_COMMAND_H_
#define QUANTD_QUANTIZE_AWQ_TOKENIZE_COMMAND_H_

#include <cstdio>
#include <istream>
#include <string>
#include <vector>

namespace quantd::quantize_awq {

// Runs the subcommand with `args` (the words after "tokenize"). Returns the exit code: 0 when every
// row was converted, 1 when some row had no "text" (its output line is `null`) or the model could
// not be loaded, 2 for a usage error.
int RunTokenize(const std::vector<std::string>& args, std::istream& in, std::FILE* out,
                std::FILE* err);

}  // namespace quantd::quantize_awq

#endif  // QUANTD_QUANTIZE_AWQ_TOKENIZE_COMMAND_H_
