// GPU memory the engine holds, for progress reporting (quantize-awq --events=jsonl). Read it from
// the thread that runs Quantize(), e.g. inside an EngineObserver callback.
#ifndef QUANTD_ENGINE_DEVICE_MEMORY_H_
#define QUANTD_ENGINE_DEVICE_MEMORY_H_

#include <cstdint>
#include <optional>

namespace quantd::engine {

struct DeviceMemoryUse {
  int64_t in_use_bytes = 0;  // Allocated through the CUDA backend now.
  int64_t peak_bytes = 0;    // High-water mark of this process.
};

// nullopt when this process has allocated no device memory: a build without CUDA, or the CPU
// backend.
std::optional<DeviceMemoryUse> EngineDeviceMemory();

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_DEVICE_MEMORY_H_
