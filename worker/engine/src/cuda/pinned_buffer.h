// An owning allocation of page-locked host memory: the home of hidden states that do not fit on
// the GPU (copies to and from it run asynchronously on a stream).
#ifndef QUANTD_ENGINE_CUDA_PINNED_BUFFER_H_
#define QUANTD_ENGINE_CUDA_PINNED_BUFFER_H_

#include <cuda_runtime.h>

#include <cstddef>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace quantd::engine::cuda {

class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  ~PinnedBuffer() { Release(); }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  PinnedBuffer(PinnedBuffer&& o) noexcept
      : ptr_(std::exchange(o.ptr_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}
  PinnedBuffer& operator=(PinnedBuffer&& o) noexcept {
    if (this != &o) {
      Release();
      ptr_ = std::exchange(o.ptr_, nullptr);
      bytes_ = std::exchange(o.bytes_, 0);
    }
    return *this;
  }

  // Makes the buffer at least `bytes` large (contents are not kept when it grows).
  absl::Status Reserve(size_t bytes) {
    if (ptr_ != nullptr && bytes <= bytes_) return absl::OkStatus();
    Release();
    if (cudaError_t err = cudaHostAlloc(&ptr_, bytes == 0 ? 1 : bytes, cudaHostAllocDefault);
        err != cudaSuccess) {
      ptr_ = nullptr;
      return absl::ResourceExhaustedError(
          absl::StrCat("cudaHostAlloc of ", bytes,
                       " bytes of pinned host memory failed: ", cudaGetErrorString(err)));
    }
    bytes_ = bytes;
    return absl::OkStatus();
  }

  void Release() {
    if (ptr_ != nullptr) cudaFreeHost(ptr_);
    ptr_ = nullptr;
    bytes_ = 0;
  }

  float* f32() const { return static_cast<float*>(ptr_); }
  size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace quantd::engine::cuda

#endif  // QUANTD_ENGINE_CUDA_PINNED_BUFFER_H_
