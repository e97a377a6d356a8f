// Device memory and error plumbing of the CUDA backend: an owning device buffer, and macros that
// turn CUDA / cuBLAS errors into absl::Status with the failing call named.
#ifndef QUANTD_ENGINE_CUDA_DEVICE_BUFFER_H_
#define QUANTD_ENGINE_CUDA_DEVICE_BUFFER_H_

#include <cuda_runtime.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace quantd::engine::cuda {

inline absl::Status CudaStatus(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("CUDA error in ", what, ": ", cudaGetErrorName(err), " (",
                                          cudaGetErrorString(err), ")"));
}

#define QUANTD_CUDA_RETURN_IF_ERROR(expr)                                                         \
  do {                                                                                            \
    if (absl::Status _s = ::quantd::engine::cuda::CudaStatus((expr), #expr); !_s.ok()) return _s; \
  } while (0)

// After kernel launches: the launch error (bad configuration) of the last launch.
#define QUANTD_CUDA_RETURN_IF_LAUNCH_FAILED(what) \
  QUANTD_CUDA_RETURN_IF_ERROR((static_cast<void>(what), cudaGetLastError()))

// Bytes currently allocated through DeviceBuffer and the high-water mark (for the memory report).
// Atomic: a layer is staged from another thread while the backend works.
struct DeviceMemoryStats {
  std::atomic<size_t> current{0};
  std::atomic<size_t> peak{0};
  std::atomic<int64_t> malloc_ns{0};  // time spent in cudaMalloc (and the wait before growing)
};
DeviceMemoryStats& GlobalDeviceMemoryStats();

// An owning, untyped device allocation. Moves only.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer() { Release(); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept
      : ptr_(std::exchange(o.ptr_, nullptr)), bytes_(o.bytes_) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      Release();
      ptr_ = std::exchange(o.ptr_, nullptr);
      bytes_ = o.bytes_;
    }
    return *this;
  }

  // Makes the buffer at least `bytes` large (contents are not kept when it grows). Work queued on
  // any stream may still use the old allocation, and cudaFree does not promise to wait for it:
  // growing waits for the device first.
  absl::Status Reserve(size_t bytes) {
    if (bytes <= bytes_ && ptr_ != nullptr) return absl::OkStatus();
    const auto start = std::chrono::steady_clock::now();
    if (ptr_ != nullptr) {
      if (cudaError_t err = cudaDeviceSynchronize(); err != cudaSuccess) {
        return absl::InternalError(
            absl::StrCat("CUDA error before growing a device buffer: ", cudaGetErrorString(err)));
      }
    }
    Release();
    void* p = nullptr;
    if (cudaError_t err = cudaMalloc(&p, bytes == 0 ? 1 : bytes); err != cudaSuccess) {
      return absl::ResourceExhaustedError(
          absl::StrCat("cudaMalloc of ", bytes, " bytes failed: ", cudaGetErrorString(err)));
    }
    ptr_ = p;
    bytes_ = bytes;
    DeviceMemoryStats& st = GlobalDeviceMemoryStats();
    st.malloc_ns += std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::chrono::steady_clock::now() - start)
                        .count();
    const size_t now = st.current.fetch_add(bytes_) + bytes_;
    size_t peak = st.peak.load();
    while (now > peak && !st.peak.compare_exchange_weak(peak, now)) {
    }
    return absl::OkStatus();
  }

  void Release() {
    if (ptr_ != nullptr) {
      cudaFree(ptr_);
      GlobalDeviceMemoryStats().current -= bytes_;
    }
    ptr_ = nullptr;
    bytes_ = 0;
  }

  template <typename T = void>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  float* f32() const { return static_cast<float*>(ptr_); }
  size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace quantd::engine::cuda

#endif  // QUANTD_ENGINE_CUDA_DEVICE_BUFFER_H_
