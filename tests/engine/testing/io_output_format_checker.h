// Checks an exported directory against every rule of spec/output-format.md, given the source
// model directory it came from, and returns the violations (empty = the checkpoint follows the
// rules). Written from the spec page, independently of the exporter, so the AWQ pipeline's tests
// can run it on real output.
#ifndef QUANTD_TESTS_ENGINE_TESTING_IO_OUTPUT_FORMAT_CHECKER_H_
#define QUANTD_TESTS_ENGINE_TESTING_IO_OUTPUT_FORMAT_CHECKER_H_

#include <optional>
#include <string>
#include <vector>

namespace quantd::engine::testing {

struct OutputFormatExpectations {
  // Dtype of the float tensors and of config.json's dtype fields: "float16" (the default) or
  // "bfloat16".
  std::string float_dtype = "float16";
  // When set, quantization_config.group_size must equal it.
  std::optional<int> group_size;
};

// Each violation is one line: "<rule>: <what>", e.g. "tensors: model.layers.0.mlp.up_proj.scales
// has dtype BF16, expected F16".
std::vector<std::string> CheckOutputFormat(const std::string& output_dir,
                                           const std::string& source_dir,
                                           const OutputFormatExpectations& expect = {});

}  // namespace quantd::engine::testing

#endif  // QUANTD_TESTS_ENGINE_TESTING_IO_OUTPUT_FORMAT_CHECKER_H_
