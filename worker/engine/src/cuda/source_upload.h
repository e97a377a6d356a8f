// Streams Linears still in the checkpoint (LinearWeights::source) to the GPU: slices of their
// values are read into float32 on several host threads (io/source_values.h: the exact values a
// host read gives) into two pinned buffers taken in turn, each copied asynchronously while the
// next slice is read. The host never holds a layer's float32 weights (a Mixtral-8x7B layer's are
// 5.4 GiB), and the copies run at pinned-memory speed.
#ifndef QUANTD_ENGINE_CUDA_SOURCE_UPLOAD_H_
#define QUANTD_ENGINE_CUDA_SOURCE_UPLOAD_H_

#include <cuda_runtime.h>

#include <array>

#include "absl/status/status.h"
#include "cuda/pinned_buffer.h"
#include "model/layer_weights.h"

namespace quantd::engine::cuda {

// One uploader per stream that uploads (its buffers are reused across calls). Not thread-safe.
class SourceStaging {
 public:
  // `threads` that read each slice (0: LayerReadThreads()).
  explicit SourceStaging(int threads = 0) : threads_(threads) {}
  ~SourceStaging();
  SourceStaging(const SourceStaging&) = delete;
  SourceStaging& operator=(const SourceStaging&) = delete;

  // Queues `src`'s values, as float32, into device_dst[0, src.count) on `stream`; returns once
  // every slice is read (the copies may still run: the stream orders what reads them).
  absl::Status Upload(const SourceValues& src, float* device_dst, cudaStream_t stream);

 private:
  std::array<PinnedBuffer, 2> buffers_;
  std::array<cudaEvent_t, 2> copied_ = {nullptr, nullptr};  // the last copy out of each buffer
  int next_ = 0;
  int threads_;
};

}  // namespace quantd::engine::cuda

#endif  // QUANTD_ENGINE_CUDA_SOURCE_UPLOAD_H_
