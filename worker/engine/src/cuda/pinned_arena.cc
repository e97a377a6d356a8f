#include "cuda/pinned_arena.h"

#include <algorithm>
#include <cstring>

#include "cuda/device_buffer.h"
#include "io/status_macros.h"

namespace quantd::engine::cuda {
namespace {

constexpr size_t kAlign = 256;
constexpr size_t kMinChunkBytes = size_t{8} << 20;

size_t AlignUp(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

}  // namespace

absl::StatusOr<void*> PinnedArena::Take(size_t bytes) {
  const size_t need = AlignUp(std::max<size_t>(bytes, 1));
  // The current chunk, then any later one with room (chunks after the current are unused).
  for (size_t i = chunk_; i < chunks_.size(); ++i) {
    const size_t offset = i == chunk_ ? used_ : 0;
    if (chunks_[i].bytes() - offset >= need) {
      chunk_ = i;
      used_ = offset + need;
      return static_cast<void*>(reinterpret_cast<char*>(chunks_[i].f32()) + offset);
    }
  }
  PinnedBuffer chunk;
  QUANTD_RETURN_IF_ERROR(chunk.Reserve(std::max(need, kMinChunkBytes)));
  chunks_.push_back(std::move(chunk));
  chunk_ = chunks_.size() - 1;
  used_ = need;
  return static_cast<void*>(chunks_.back().f32());
}

absl::Status PinnedArena::Upload(const void* src, size_t bytes, void* device_dst,
                                 cudaStream_t stream) {
  absl::StatusOr<void*> piece = Take(bytes);
  if (!piece.ok()) return piece.status();
  std::memcpy(*piece, src, bytes);
  return CudaStatus(cudaMemcpyAsync(device_dst, *piece, bytes, cudaMemcpyHostToDevice, stream),
                    "pinned upload");
}

absl::Status PinnedArena::Download(const void* device_src, size_t bytes, void* host_dst,
                                   cudaStream_t stream) {
  absl::StatusOr<void*> piece = Take(bytes);
  if (!piece.ok()) return piece.status();
  QUANTD_CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(*piece, device_src, bytes, cudaMemcpyDeviceToHost, stream));
  pending_.push_back({*piece, host_dst, bytes});
  return absl::OkStatus();
}

void PinnedArena::FinishDownloads() {
  for (const PendingDownload& d : pending_) std::memcpy(d.host_dst, d.piece, d.bytes);
  pending_.clear();
}

void PinnedArena::Reset() {
  pending_.clear();
  chunk_ = 0;
  used_ = 0;
}

}  // namespace quantd::engine::cuda
