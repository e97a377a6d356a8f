// A small safetensors reader for the engine's AWQ tests: reads reference files (the AutoAWQ parity
// fixture) into float32 / int32 host arrays. Not the engine's reader (io/), so tests that compare
// against golden files do not depend on the code under test.
#ifndef QUANTD_TESTS_ENGINE_TESTING_AWQ_TEST_SAFETENSORS_H_
#define QUANTD_TESTS_ENGINE_TESTING_AWQ_TEST_SAFETENSORS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/tensor.h"

namespace quantd::engine::testing {

struct TestTensor {
  std::string dtype;  // "F16", "F32", "BF16", "I32"
  std::vector<int64_t> shape;
  std::vector<float> values;  // float dtypes, converted exactly
  std::vector<int32_t> ints;  // I32
  Tensor AsTensor() const {
    Tensor t;
    t.shape = shape;
    t.data = values;
    return t;
  }
};

absl::StatusOr<std::map<std::string, TestTensor>> ReadTestSafetensors(const std::string& path);

// Rows of {"input_ids": [...]} from a JSON-lines file.
absl::StatusOr<std::vector<std::vector<int32_t>>> ReadInputIdRows(const std::string& path);

}  // namespace quantd::engine::testing

#endif  // QUANTD_TESTS_ENGINE_TESTING_AWQ_TEST_SAFETENSORS_H_
