// Reading Linears left in the checkpoint (LinearWeights::source, CheckpointReader::
// LoadLayerSources) into float32: the exact values SafetensorsFile::ReadFloat gives, checked
// finite, their pages dropped from the mapping as they are read. The CPU backend's layers are
// read whole (MaterializeLayer); the CUDA backend reads slices into pinned buffers on their way
// to the GPU (cuda/source_upload.h).
#ifndef QUANTD_ENGINE_IO_SOURCE_VALUES_H_
#define QUANTD_ENGINE_IO_SOURCE_VALUES_H_

#include <cstdint>

#include "absl/status/status.h"
#include "model/layer_weights.h"

namespace quantd::engine {

// Values [first, first + n) of `src` into out[0, n), converted on up to `threads` threads;
// InvalidArgument naming the file, the tensor and the element when one is not finite.
absl::Status ReadSourceValues(const SourceValues& src, int64_t first, int64_t n, float* out,
                              int threads);

// Reads every Linear of `layer` still in the checkpoint into its weight (Linears in parallel);
// the first one (in ForEachLinear's order) that fails is the error.
absl::Status MaterializeLayer(LayerWeights* layer);

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_IO_SOURCE_VALUES_H_
