#include "gpu_probe.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

#if QUANTD_WORKER_CUDA
#include <cuda_runtime_api.h>
#endif

namespace quantd::worker {

std::vector<v1::Gpu> ProbeGpus(std::string* why_none) {
  std::vector<v1::Gpu> gpus;
#if QUANTD_WORKER_CUDA
  int count = 0;
  cudaError_t error = cudaGetDeviceCount(&count);
  if (error != cudaSuccess) {
    if (why_none) *why_none = absl::StrCat("CUDA runtime: ", cudaGetErrorString(error));
    return gpus;
  }
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
    v1::Gpu gpu;
    gpu.set_index(i);
    gpu.set_name(prop.name);
    gpu.set_memory_bytes(static_cast<int64_t>(prop.totalGlobalMem));
    const auto* u = reinterpret_cast<const unsigned char*>(prop.uuid.bytes);
    gpu.set_uuid(absl::StrFormat(
        "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
        u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]));
    gpus.push_back(std::move(gpu));
  }
  if (gpus.empty() && why_none) *why_none = "CUDA runtime reports no device";
#else
  if (why_none) *why_none = "built without CUDA";
#endif
  return gpus;
}

}  // namespace quantd::worker
