#include "pipeline/source_tensors.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "io/status_macros.h"
#include "model/architecture.h"

namespace quantd::engine {
namespace {

absl::StatusOr<const SafetensorsEntry*> FindSource(const CheckpointReader& reader,
                                                   std::string_view name,
                                                   const SafetensorsFile** file) {
  const SafetensorsEntry* e = reader.Find(name, file);
  if (e == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("tensor \"", std::string(name), "\" is not in the source checkpoint"));
  }
  if (e->dtype == DType::kI32 || e->shape.size() != 2) {
    return absl::InvalidArgumentError(absl::StrCat((*file)->path(), ": tensor \"",
                                                   std::string(name), "\" is not a float matrix"));
  }
  return e;
}

}  // namespace

absl::StatusOr<EmbeddingRows> ReadEmbeddingRows(
    const CheckpointReader& reader,
    const std::vector<const std::vector<std::vector<int32_t>>*>& block_sets) {
  const SafetensorsFile* file = nullptr;
  absl::StatusOr<const SafetensorsEntry*> entry = FindSource(reader, kEmbedTokensName, &file);
  if (!entry.ok()) return entry.status();
  const SafetensorsEntry& e = **entry;
  const int64_t vocab = e.shape[0], hidden = e.shape[1];
  // Row of each id in the compact table, in order of first use.
  std::vector<int32_t> row_of(static_cast<size_t>(vocab), -1);
  std::vector<int64_t> ids;
  EmbeddingRows out;
  for (const auto* set : block_sets) {
    auto& renumbered = out.block_sets.emplace_back();
    renumbered.reserve(set->size());
    for (const std::vector<int32_t>& block : *set) {
      auto& b = renumbered.emplace_back();
      b.reserve(block.size());
      for (int32_t id : block) {
        if (id < 0 || id >= vocab) {
          return absl::InvalidArgumentError(
              absl::StrCat("token id ", id, " is outside the embedding's vocabulary of ", vocab));
        }
        int32_t& row = row_of[static_cast<size_t>(id)];
        if (row < 0) {
          row = static_cast<int32_t>(ids.size());
          ids.push_back(id);
        }
        b.push_back(row);
      }
    }
  }
  out.rows = Tensor({static_cast<int64_t>(ids.size()), hidden});
  const uint8_t* base = file->Bytes(e).data();
  const size_t row_bytes = static_cast<size_t>(hidden * DTypeSize(e.dtype));
  for (size_t r = 0; r < ids.size(); ++r) {
    ToFloat32(e.dtype, base + static_cast<size_t>(ids[r]) * row_bytes, static_cast<size_t>(hidden),
              out.rows.ptr() + static_cast<int64_t>(r) * hidden);
  }
  file->ReleasePages(file->Bytes(e));
  QUANTD_RETURN_IF_ERROR(
      CheckFiniteWeights(file->path(), kEmbedTokensName, out.rows.ptr(), out.rows.data.size()));
  return out;
}

absl::Status CopySourceTensor(const CheckpointReader& reader, std::string_view source_name,
                              AwqExporter* exporter, std::string_view name) {
  const SafetensorsFile* file = nullptr;
  absl::StatusOr<const SafetensorsEntry*> entry = FindSource(reader, source_name, &file);
  if (!entry.ok()) return entry.status();
  const SafetensorsEntry& e = **entry;
  const absl::Span<const uint8_t> bytes = file->Bytes(e);
  const size_t width = static_cast<size_t>(DTypeSize(e.dtype));
  // Whole rows, about 64 MiB of source at a time, each slice's pages dropped once written.
  const size_t row = static_cast<size_t>(e.shape[1]) * width;
  const size_t slice = std::max<size_t>(1, (size_t{64} << 20) / row) * row;
  for (size_t off = 0; off < bytes.size(); off += slice) {
    const absl::Span<const uint8_t> part = bytes.subspan(off, slice);
    QUANTD_RETURN_IF_ERROR(
        exporter->WriteFloatFrom(name, static_cast<int64_t>(off / width), e.dtype, part));
    file->ReleasePages(part);
  }
  return absl::OkStatus();
}

}  // namespace quantd::engine
