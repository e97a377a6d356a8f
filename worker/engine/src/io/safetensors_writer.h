// SafetensorsWriter: one .safetensors file whose layout is fixed up front, so tensors can be
// written (pwrite) in any order as they are produced and memory stays bounded by one tensor.
// Layout as the safetensors library writes it: tensors ordered by dtype descending (F32, I32,
// BF16, F16) then by name, contiguous data; header compact JSON with "__metadata__" first,
// padded with spaces to a multiple of 8.
#ifndef QUANTD_ENGINE_IO_SAFETENSORS_WRITER_H_
#define QUANTD_ENGINE_IO_SAFETENSORS_WRITER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/dtype.h"
#include "core/tensor.h"

namespace quantd::engine {

// A tensor of a planned output file.
struct PlannedTensor {
  std::string name;
  DType dtype = DType::kF16;
  std::vector<int64_t> shape;
  int64_t byte_size() const { return Tensor::NumElements(shape) * DTypeSize(dtype); }
};

// The header bytes (length prefix excluded) and each tensor's data offset for `tensors`, in the
// order the file stores them.
struct SafetensorsLayout {
  std::string header;                  // Padded JSON.
  std::vector<PlannedTensor> ordered;  // Storage order.
  std::vector<uint64_t> offsets;       // Data-section offsets, parallel to `ordered`.
  uint64_t data_size = 0;
  uint64_t file_size() const { return 8 + header.size() + data_size; }
};
SafetensorsLayout PlanSafetensorsLayout(std::vector<PlannedTensor> tensors,
                                        const std::map<std::string, std::string>& metadata);

class SafetensorsWriter {
 public:
  // Creates `path` (normally a temporary name) sized for the whole layout, with the header
  // written. Tensor names must be unique. With `reuse_existing`, a file already at `path` with
  // exactly this layout (size and header) is opened as it is, its data kept (a resumed run fills
  // in what an interrupted one did not write); reused() says whether it was.
  static absl::StatusOr<std::unique_ptr<SafetensorsWriter>> Create(
      const std::string& path, std::vector<PlannedTensor> tensors,
      const std::map<std::string, std::string>& metadata, bool reuse_existing = false);
  ~SafetensorsWriter();
  SafetensorsWriter(const SafetensorsWriter&) = delete;
  SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;

  bool Contains(std::string_view name) const;
  const PlannedTensor* Find(std::string_view name) const;

  // Writes the little-endian bytes of a planned tensor; the size must match its plan, and each
  // tensor may be written once.
  absl::Status Write(std::string_view name, absl::Span<const uint8_t> bytes);

  // Writes part of a tensor at a byte offset within it, for tensors produced in pieces. Parts
  // must not overlap; the tensor counts as written once its parts add up to its size.
  absl::Status WritePart(std::string_view name, uint64_t offset, absl::Span<const uint8_t> bytes);

  // Names of planned tensors not written yet.
  std::vector<std::string> Missing() const;

  // Counts a tensor as written without writing it: its bytes are in a reused file already.
  absl::Status MarkWritten(std::string_view name);
  bool reused() const { return reused_; }

  // Starts writing the file's dirty pages to disk without waiting (sync_file_range), so the
  // fsync of Finish() has little left to do when the file was filled over a long run.
  void StartWriteback() const;

  // Fails if a tensor is missing; otherwise fsyncs and closes the file.
  absl::Status Finish();

 private:
  SafetensorsWriter() = default;

  std::string path_;
  int fd_ = -1;
  SafetensorsLayout layout_;
  uint64_t data_start_ = 0;
  std::map<std::string, size_t, std::less<>> index_;
  std::vector<uint64_t> written_;  // Bytes written per tensor.
  bool reused_ = false;
};

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_IO_SAFETENSORS_WRITER_H_
