// Builds an AWQ export of a source model with random but validly packed quantized tensors
// (codes and zero points in 0..15, packed in AutoAWQ's GEMM nibble order, positive fp16 scales),
// through the real AwqExporter. For tests of the exporter and of the output-format checker, which
// need an export without running the AWQ search.
#ifndef QUANTD_TESTS_ENGINE_TESTING_IO_RANDOM_EXPORT_H_
#define QUANTD_TESTS_ENGINE_TESTING_IO_RANDOM_EXPORT_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "export/awq_export.h"

namespace quantd::engine::testing {

// Packs codes [rows, cols] (each 0..15) along cols, 8 per int32, nibble i of word c holding column
// 8c + {0,2,4,6,1,3,5,7}[i] (spec/output-format.md).
std::vector<int32_t> PackAwqGemm(const std::vector<uint8_t>& codes, int64_t rows, int64_t cols);

// Exports options.model_dir into options.output_dir with random quantized Linears.
absl::StatusOr<std::vector<Artifact>> ExportRandomAwq(const ExportOptions& options,
                                                      uint64_t seed = 1);

}  // namespace quantd::engine::testing

#endif  // QUANTD_TESTS_ENGINE_TESTING_IO_RANDOM_EXPORT_H_
