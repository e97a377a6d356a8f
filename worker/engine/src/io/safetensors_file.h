// SafetensorsFile: one memory-mapped .safetensors file with a validated header. Tensor bytes are
// not read until asked for, so opening every shard of a large model costs only address space.
//
// Format: 8-byte little-endian header length N, N bytes of JSON (an object of
// name -> {"dtype", "shape", "data_offsets": [begin, end]} plus an optional "__metadata__" map of
// strings), then the data section; offsets are relative to the data section.
#ifndef QUANTD_ENGINE_IO_SAFETENSORS_FILE_H_
#define QUANTD_ENGINE_IO_SAFETENSORS_FILE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/dtype.h"
#include "core/tensor.h"

namespace quantd::engine {

struct SafetensorsEntry {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // Byte range in the data section.
  uint64_t end = 0;
  int64_t numel() const { return Tensor::NumElements(shape); }
};

// InvalidArgument naming the tensor and file when `values` holds a NaN or an infinity: such a
// checkpoint cannot be quantized, and found at load it fails the job before any work on it.
// `values` may be a part of the tensor starting at its element `first_element` (errors name the
// tensor's element).
absl::Status CheckFiniteWeights(std::string_view file, std::string_view tensor, const float* values,
                                size_t count, size_t first_element = 0);

// Parses DTypeName() spellings; anything else is nullopt.
std::optional<DType> ParseSafetensorsDType(std::string_view name);

class SafetensorsFile {
 public:
  // Maps and validates `path`. Every problem is InvalidArgument naming the file (and the tensor).
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // Entries in data-offset order.
  const std::vector<SafetensorsEntry>& entries() const { return entries_; }
  const SafetensorsEntry* Find(std::string_view name) const;

  // Raw little-endian bytes of a tensor (unaligned).
  absl::Span<const uint8_t> Bytes(const SafetensorsEntry& entry) const;

  // Drops the pages of `bytes` (a range returned by Bytes()) from this process's mapping, not
  // from the page cache, so a model streamed through the mapping does not pile up in resident
  // memory.
  void ReleasePages(absl::Span<const uint8_t> bytes) const;

  // `bytes` (a range of Bytes(), values of `dtype`: F32, F16 or BF16) as float32 into `out`,
  // exactly; the pages are released slice by slice as they are read, so that several threads
  // reading a layer (CheckpointReader::LoadLayer) hold a slice of the file each, not a tensor.
  void ConvertReleasing(DType dtype, absl::Span<const uint8_t> bytes, float* out) const;

  // A float tensor as float32 (exact for F16/BF16/F32); other dtypes are InvalidArgument. Its
  // pages are released afterwards.
  absl::StatusOr<Tensor> ReadFloat(const SafetensorsEntry& entry) const;
  // An I32 tensor's values.
  absl::StatusOr<std::vector<int32_t>> ReadInt32(const SafetensorsEntry& entry) const;

 private:
  SafetensorsFile() = default;
  absl::Status ParseHeader();

  std::string path_;
  const uint8_t* map_ = nullptr;
  size_t size_ = 0;
  uint64_t data_start_ = 0;
  std::map<std::string, std::string> metadata_;
  std::vector<SafetensorsEntry> entries_;
  std::map<std::string, size_t, std::less<>> index_;
};

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_IO_SAFETENSORS_FILE_H_
