// Page-locked host memory for one layer's asynchronous copies. Copies between pageable memory and
// the device make the host wait for the stream; staging them here lets a whole layer be queued
// with one synchronisation at the end.
#ifndef QUANTD_ENGINE_CUDA_PINNED_ARENA_H_
#define QUANTD_ENGINE_CUDA_PINNED_ARENA_H_

#include <cuda_runtime.h>

#include <cstddef>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cuda/pinned_buffer.h"

namespace quantd::engine::cuda {

class PinnedArena {
 public:
  PinnedArena() = default;
  PinnedArena(const PinnedArena&) = delete;
  PinnedArena& operator=(const PinnedArena&) = delete;

  // A piece of `bytes` that keeps its contents until Reset(). Pieces never move: the arena grows
  // by adding chunks.
  absl::StatusOr<void*> Take(size_t bytes);

  // Copies `bytes` from host memory to `device_dst` on `stream` through a piece of the arena (the
  // source may be reused as soon as this returns).
  absl::Status Upload(const void* src, size_t bytes, void* device_dst, cudaStream_t stream);

  // Queues a copy of `bytes` from `device_src` into a piece on `stream`; FinishDownloads() moves it
  // to `host_dst`, which must stay valid until then.
  absl::Status Download(const void* device_src, size_t bytes, void* host_dst, cudaStream_t stream);

  // After the stream has been synchronised: delivers the queued downloads, in order.
  void FinishDownloads();

  // Makes every piece reusable and drops undelivered downloads. Only when no queued copy can
  // still read or write the arena (the stream is synchronised).
  void Reset();

 private:
  struct PendingDownload {
    const void* piece;
    void* host_dst;
    size_t bytes;
  };
  std::vector<PinnedBuffer> chunks_;
  size_t chunk_ = 0;  // the chunk pieces are taken from
  size_t used_ = 0;   // bytes of it handed out
  std::vector<PendingDownload> pending_;
};

}  // namespace quantd::engine::cuda

#endif  // QUANTD_ENGINE_CUDA_PINNED_ARENA_H_
