// Helpers shared by the CUDA gpu tests of tests/engine (include only where QUANTD_HAVE_CUDA).
#ifndef QUANTD_TESTS_ENGINE_TESTING_CUDA_GPU_TEST_SUPPORT_H_
#define QUANTD_TESTS_ENGINE_TESTING_CUDA_GPU_TEST_SUPPORT_H_

#include <cuda_runtime.h>

#include <cstddef>

#include "gtest/gtest.h"

namespace quantd::engine {

#define ASSERT_CUDA(expr)                                                  \
  do {                                                                     \
    const cudaError_t _e = (expr);                                         \
    ASSERT_EQ(_e, cudaSuccess) << #expr << ": " << cudaGetErrorString(_e); \
  } while (0)

inline bool HaveDevice() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

// A device allocation freed at scope exit (ptr null where cudaMalloc failed).
struct DeviceArray {
  void* ptr = nullptr;
  explicit DeviceArray(size_t bytes) {
    if (cudaMalloc(&ptr, bytes) != cudaSuccess) ptr = nullptr;
  }
  ~DeviceArray() { cudaFree(ptr); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  float* f32() const { return static_cast<float*>(ptr); }
  char* bytes() const { return static_cast<char*>(ptr); }
};

}  // namespace quantd::engine

#endif  // QUANTD_TESTS_ENGINE_TESTING_CUDA_GPU_TEST_SUPPORT_H_
