// CheckpointReader: the weights of a Hugging Face model directory — a single model.safetensors or
// the shards named by model.safetensors.index.json — memory-mapped, checked against the
// ModelConfig, and read one layer at a time as exact float32 copies.
#ifndef QUANTD_ENGINE_IO_CHECKPOINT_READER_H_
#define QUANTD_ENGINE_IO_CHECKPOINT_READER_H_

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/tensor.h"
#include "io/safetensors_file.h"
#include "model/architecture.h"
#include "model/layer_weights.h"
#include "model/model_config.h"

namespace quantd::engine {

class CheckpointReader {
 public:
  // Opens the weights of `model_dir`. Errors (InvalidArgument) name the file and what is wrong:
  // no safetensors at all, a broken index, a missing shard, a tensor the index places in a shard
  // that lacks it, an invalid safetensors header.
  static absl::StatusOr<std::unique_ptr<CheckpointReader>> Open(const std::string& model_dir);

  // Shard files in index order (or the single file).
  std::vector<std::string> files() const;

  // The entry and file of a tensor, or nullptr.
  const SafetensorsEntry* Find(std::string_view name, const SafetensorsFile** file = nullptr) const;

  // A float tensor as float32; NotFound / InvalidArgument name the tensor and file.
  absl::StatusOr<Tensor> ReadFloat(std::string_view name) const;

  // Checks that every tensor the config implies exists with the expected shape (tied models need
  // no lm_head.weight). The first problem is InvalidArgument naming tensor, file, expected and
  // found.
  absl::Status CheckAgainstConfig(const ModelConfig& config) const;

  // One decoder layer's weights (only that layer's tensors are read; the Linears in parallel).
  absl::StatusOr<LayerWeights> LoadLayer(const ModelConfig& config, int layer) const;
  // The same with the Linears' weights left in the checkpoint (LinearWeights::source: checked,
  // not read; io/source_values.h reads them); norms, biases and the router are read.
  absl::StatusOr<LayerWeights> LoadLayerSources(const ModelConfig& config, int layer) const;
  // A tensor that must exist with `spec`'s shape and a float dtype, as values to read later.
  absl::StatusOr<SourceValues> Source(const TensorSpec& spec) const;
  absl::StatusOr<Tensor> LoadEmbedding() const;
  absl::StatusOr<Tensor> LoadFinalNorm() const;
  // lm_head.weight; for tied models the embedding.
  absl::StatusOr<Tensor> LoadLmHead(const ModelConfig& config) const;

  // A float tensor that must exist with `spec`'s shape: InvalidArgument naming the tensor, the
  // file, the expected and the found shape (or dtype) otherwise. `file` / `entry` may be null.
  absl::Status CheckTensor(const TensorSpec& spec, const SafetensorsFile** file,
                           const SafetensorsEntry** entry) const;
  // CheckTensor, then its values as float32.
  absl::StatusOr<Tensor> ReadExpected(std::string_view name,
                                      const std::vector<int64_t>& shape) const;

 private:
  CheckpointReader() = default;

  std::string model_dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const SafetensorsFile*, std::less<>> location_;
};

// Threads a decoder layer's tensors are read and converted with (MaterializeLayer, the CUDA
// backend's uploads): memory-bound work, for which 16 threads (an H200 machine's cores) are
// about what the memory takes.
int LayerReadThreads();

// Every Linear that will be quantized (not matched by modules_to_not_convert as a substring of
// its full name, as vLLM matches) must have in_features % group_size == 0 and
// out_features % 8 == 0 (GEMM packing). FailedPrecondition names the module and the numbers.
absl::Status CheckQuantizableGeometry(const ModelConfig& config, int group_size,
                                      const std::vector<std::string>& modules_to_not_convert);

// A source model ready to quantize: config parsed, weights opened and checked against it, and
// the quantized Linears' geometry checked for `group_size`.
struct SourceModel {
  ModelConfig config;
  std::unique_ptr<CheckpointReader> weights;
};
absl::StatusOr<SourceModel> OpenSourceModel(const std::string& model_dir, int group_size,
                                            const std::vector<std::string>& modules_to_not_convert);

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_IO_CHECKPOINT_READER_H_
