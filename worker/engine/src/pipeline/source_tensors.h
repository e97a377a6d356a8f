// Reading the model's float tensors outside the decoder layers straight from the memory-mapped
// checkpoint, without a float32 copy of the whole [vocab, hidden] matrix: the embedding rows the
// calibration (and evaluation) tokens use, and the copy of the embedding / lm_head into the output.
#ifndef QUANTD_ENGINE_PIPELINE_SOURCE_TENSORS_H_
#define QUANTD_ENGINE_PIPELINE_SOURCE_TENSORS_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/tensor.h"
#include "export/awq_export.h"
#include "io/checkpoint_reader.h"

namespace quantd::engine {

// The embedding rows of the distinct ids in `block_sets`, as float32 [rows, hidden], and the
// blocks with their ids renumbered to index those rows: Backend::Embed() of the renumbered blocks
// with `rows` gives the same hidden states as of the original blocks with the whole embedding.
struct EmbeddingRows {
  Tensor rows;
  std::vector<std::vector<std::vector<int32_t>>> block_sets;  // parallel to the input
};

// InvalidArgument names an id outside the vocabulary.
absl::StatusOr<EmbeddingRows> ReadEmbeddingRows(
    const CheckpointReader& reader,
    const std::vector<const std::vector<std::vector<int32_t>>*>& block_sets);

// Copies the source tensor `source_name` into the output tensor `name` (converted to its planned
// dtype), then drops the source's pages from the mapping.
absl::Status CopySourceTensor(const CheckpointReader& reader, std::string_view source_name,
                              AwqExporter* exporter, std::string_view name);

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_PIPELINE_SOURCE_TENSORS_H_
