// Device memory in use on the worker's GPUs, as the heartbeat reports it to the server
// (Heartbeat.gpu_memory_used_bytes): read through NVML, the driver's management library, so it
// counts every process on the device, not only quantd's jobs, and needs no CUDA context (which
// would itself take device memory). libnvidia-ml.so.1 is loaded at run time, so the worker runs
// where no driver is installed (then it offers CPU slots and reports no GPU memory).
#ifndef QUANTD_WORKER_DAEMON_GPU_MEMORY_MONITOR_H_
#define QUANTD_WORKER_DAEMON_GPU_MEMORY_MONITOR_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "quantd/v1/worker_service.pb.h"

namespace quantd::worker {

inline constexpr char kNvmlLibrary[] = "libnvidia-ml.so.1";

class GpuMemoryMonitor {
 public:
  // Loads `library` and finds each of `gpus` by its UUID (v1::Gpu.uuid, as ProbeGpus fills it).
  // nullptr, with the reason in `why_not`, when there is no GPU, the library or one of its
  // functions is missing, NVML does not start, or a GPU is unknown to it.
  static std::unique_ptr<GpuMemoryMonitor> Open(const std::vector<v1::Gpu>& gpus,
                                                std::string* why_not,
                                                const std::string& library = kNvmlLibrary);
  ~GpuMemoryMonitor();
  GpuMemoryMonitor(const GpuMemoryMonitor&) = delete;
  GpuMemoryMonitor& operator=(const GpuMemoryMonitor&) = delete;

  // Bytes in use per GPU index (CUDA ordinal); a GPU whose query fails is left out.
  std::map<int32_t, int64_t> UsedBytes() const;

 private:
  struct Nvml;
  explicit GpuMemoryMonitor(std::unique_ptr<Nvml> nvml);
  std::unique_ptr<Nvml> nvml_;
};

}  // namespace quantd::worker

#endif  // QUANTD_WORKER_DAEMON_GPU_MEMORY_MONITOR_H_
