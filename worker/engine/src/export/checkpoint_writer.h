// CheckpointWriter: the weights of an output checkpoint — `model.safetensors`, or shards
// `model-0000i-of-0000N.safetensors` plus `model.safetensors.index.json` — planned up front from
// the state dict (names, dtypes, shapes in Hugging Face order) and filled as tensors are produced.
// Sharding follows huggingface_hub.save_torch_state_dict (AutoAWQ's saver): walk the state dict in
// order; a tensor larger than the limit gets a shard of its own; otherwise a new shard starts when
// the running size would exceed the limit.
#ifndef QUANTD_ENGINE_EXPORT_CHECKPOINT_WRITER_H_
#define QUANTD_ENGINE_EXPORT_CHECKPOINT_WRITER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/tensor.h"
#include "io/safetensors_writer.h"
#include "io/staged_files.h"

namespace quantd::engine {

// AutoAWQ's default shard_size "5GB" (decimal, as huggingface_hub parses it).
inline constexpr int64_t kDefaultMaxShardBytes = 5'000'000'000;

struct ShardPlan {
  std::string file_name;
  std::vector<PlannedTensor> tensors;  // State-dict order.
};

// Splits a state dict into shards and names them.
std::vector<ShardPlan> PlanShards(const std::vector<PlannedTensor>& state_dict,
                                  int64_t max_shard_bytes);

class CheckpointWriter {
 public:
  // Creates the temporaries of every shard in `staged` (which must outlive the writer).
  // `dropped` maps tensor names left out for shared storage to the name kept
  // (tied: {"lm_head.weight": "model.embed_tokens.weight"}); it goes into the single file's
  // __metadata__ or the index's metadata.
  // With `reuse_staged`, shard temporaries an interrupted run left with exactly this layout are
  // kept as they are (SafetensorsWriter::Create), for a resumed run to fill in.
  static absl::StatusOr<std::unique_ptr<CheckpointWriter>> Create(
      StagedFiles* staged, std::vector<PlannedTensor> state_dict,
      std::map<std::string, std::string> dropped, int64_t max_shard_bytes = kDefaultMaxShardBytes,
      bool reuse_staged = false);

  const std::vector<PlannedTensor>& state_dict() const { return state_dict_; }
  const PlannedTensor* Find(std::string_view name) const;

  // Raw little-endian bytes in the planned dtype.
  absl::Status Write(std::string_view name, absl::Span<const uint8_t> bytes);
  // Part of a tensor at a byte offset (see SafetensorsWriter::WritePart).
  absl::Status WritePart(std::string_view name, uint64_t offset, absl::Span<const uint8_t> bytes);
  // A float tensor converted (round to nearest even) to its planned float dtype; shape must match.
  absl::Status WriteFloat(std::string_view name, const Tensor& tensor);
  // Consecutive elements [first, first + values.size()) of a float tensor, converted likewise:
  // large tensors (embeddings) can be produced and written a slice at a time.
  absl::Status WriteFloatPart(std::string_view name, int64_t first, absl::Span<const float> values);
  // Consecutive elements [first, first + n) of a float tensor given as the raw little-endian bytes
  // of `source` dtype (a slice of a memory-mapped source tensor: embedding, lm_head), converted
  // to the planned dtype a slice at a time, so no float32 copy of the whole tensor is made;
  // copied as is when the dtypes agree.
  absl::Status WriteFloatFrom(std::string_view name, int64_t first, DType source,
                              absl::Span<const uint8_t> bytes);
  // An I32 tensor given as values; the count must match the planned shape.
  absl::Status WriteInt32(std::string_view name, absl::Span<const int32_t> values);
  // An I64 tensor given as values (compressed-tensors' weight_shape).
  absl::Status WriteInt64(std::string_view name, absl::Span<const int64_t> values);

  std::vector<std::string> Missing() const;

  // Whether every shard was a reused temporary (Create with reuse_staged).
  bool reused() const;
  // Counts a tensor of a reused shard as written (its bytes are there from an earlier run).
  absl::Status MarkWritten(std::string_view name);

  // Starts writing what was written so far to disk, without waiting (see Finish()).
  void StartWriteback() const;

  // Fails (InternalError naming a tensor) when a planned tensor was not written; otherwise
  // fsyncs every shard and stages the index. Renaming is the StagedFiles' Commit().
  absl::Status Finish();

  // Final file names, shards first, then the index when sharded.
  std::vector<std::string> file_names() const;

 private:
  CheckpointWriter() = default;
  SafetensorsWriter* WriterOf(std::string_view name) const;
  template <typename Int>
  absl::Status WriteInts(std::string_view name, DType dtype, absl::Span<const Int> values);

  StagedFiles* staged_ = nullptr;
  std::vector<PlannedTensor> state_dict_;
  std::map<std::string, std::string> dropped_;
  std::vector<ShardPlan> shards_;
  std::vector<std::unique_ptr<SafetensorsWriter>> writers_;
  std::map<std::string, size_t, std::less<>> shard_of_;
};

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_EXPORT_CHECKPOINT_WRITER_H_
