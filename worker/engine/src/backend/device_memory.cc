#include "quantd/engine/device_memory.h"

#if defined(QUANTD_HAVE_CUDA)
#include "cuda/cuda_backend.h"
#endif

namespace quantd::engine {

std::optional<DeviceMemoryUse> EngineDeviceMemory() {
#if defined(QUANTD_HAVE_CUDA)
  const size_t peak = CudaPeakDeviceBytes();
  if (peak == 0) return std::nullopt;
  return DeviceMemoryUse{static_cast<int64_t>(CudaDeviceBytesInUse()), static_cast<int64_t>(peak)};
#else
  return std::nullopt;
#endif
}

}  // namespace quantd::engine
