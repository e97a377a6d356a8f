#include "cuda/source_upload.h"

#include <algorithm>
#include <cstdint>

#include "cuda/device_buffer.h"
#include "io/checkpoint_reader.h"
#include "io/source_values.h"
#include "io/status_macros.h"

namespace quantd::engine::cuda {
namespace {

// Float32 values per slice (32 MiB a buffer): large enough that a copy outlasts the thread
// start-up of the next slice's read, small beside a layer.
constexpr int64_t kSliceValues = int64_t{8} << 20;

}  // namespace

SourceStaging::~SourceStaging() {
  for (cudaEvent_t e : copied_) {
    if (e == nullptr) continue;
    cudaEventSynchronize(e);  // the buffers are freed next
    cudaEventDestroy(e);
  }
}

absl::Status SourceStaging::Upload(const SourceValues& src, float* device_dst,
                                   cudaStream_t stream) {
  for (int64_t done = 0; done < src.count; done += kSliceValues) {
    const int64_t n = std::min(kSliceValues, src.count - done);
    const int b = next_;
    next_ ^= 1;
    if (copied_[b] == nullptr) {
      QUANTD_CUDA_RETURN_IF_ERROR(cudaEventCreateWithFlags(&copied_[b], cudaEventDisableTiming));
    } else {
      // The buffer's previous copy must be done before it is overwritten.
      QUANTD_CUDA_RETURN_IF_ERROR(cudaEventSynchronize(copied_[b]));
    }
    QUANTD_RETURN_IF_ERROR(buffers_[b].Reserve(static_cast<size_t>(kSliceValues) * sizeof(float)));
    QUANTD_RETURN_IF_ERROR(ReadSourceValues(src, done, n, buffers_[b].f32(),
                                            threads_ > 0 ? threads_ : LayerReadThreads()));
    QUANTD_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(device_dst + done, buffers_[b].f32(),
                                                static_cast<size_t>(n) * sizeof(float),
                                                cudaMemcpyHostToDevice, stream));
    QUANTD_CUDA_RETURN_IF_ERROR(cudaEventRecord(copied_[b], stream));
  }
  return absl::OkStatus();
}

}  // namespace quantd::engine::cuda
