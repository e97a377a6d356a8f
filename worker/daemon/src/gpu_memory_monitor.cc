#include "gpu_memory_monitor.h"

#include <dlfcn.h>

#include <type_traits>
#include <utility>

#include "absl/strings/str_cat.h"

namespace quantd::worker {
namespace {

// The few NVML declarations used, from its C API (nvml.h is not installed with the CUDA toolkit
// here): functions return 0 (NVML_SUCCESS) or an error code; devices are opaque handles.
using NvmlReturn = int;
using NvmlDevice = struct NvmlDeviceSt*;
struct NvmlMemory {
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
};

}  // namespace

struct GpuMemoryMonitor::Nvml {
  void* library = nullptr;
  NvmlReturn (*init)() = nullptr;
  NvmlReturn (*shutdown)() = nullptr;
  NvmlReturn (*handle_by_uuid)(const char*, NvmlDevice*) = nullptr;
  NvmlReturn (*memory_info)(NvmlDevice, NvmlMemory*) = nullptr;
  const char* (*error_string)(NvmlReturn) = nullptr;
  bool initialized = false;
  std::map<int32_t, NvmlDevice> devices;  // by GPU index

  ~Nvml() {
    if (initialized) shutdown();
    if (library != nullptr) dlclose(library);
  }
  std::string Error(NvmlReturn code) const {
    return absl::StrCat(error_string != nullptr ? error_string(code) : "error", " (", code, ")");
  }
};

std::unique_ptr<GpuMemoryMonitor> GpuMemoryMonitor::Open(const std::vector<v1::Gpu>& gpus,
                                                         std::string* why_not,
                                                         const std::string& library) {
  const auto fail = [why_not](std::string why) {
    if (why_not != nullptr) *why_not = std::move(why);
    return nullptr;
  };
  if (gpus.empty()) return fail("no GPU");
  auto nvml = std::make_unique<Nvml>();
  nvml->library = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (nvml->library == nullptr) return fail(absl::StrCat("cannot load ", library, ": ", dlerror()));
  const char* missing = nullptr;
  const auto find = [&](auto& function, const char* name) {
    function =
        reinterpret_cast<std::remove_reference_t<decltype(function)>>(dlsym(nvml->library, name));
    if (function == nullptr && missing == nullptr) missing = name;
  };
  find(nvml->init, "nvmlInit_v2");
  find(nvml->shutdown, "nvmlShutdown");
  find(nvml->handle_by_uuid, "nvmlDeviceGetHandleByUUID");
  find(nvml->memory_info, "nvmlDeviceGetMemoryInfo");
  find(nvml->error_string, "nvmlErrorString");
  if (missing != nullptr) return fail(absl::StrCat(library, " has no ", missing));
  if (NvmlReturn r = nvml->init(); r != 0) {
    return fail(absl::StrCat("nvmlInit_v2: ", nvml->Error(r)));
  }
  nvml->initialized = true;
  for (const v1::Gpu& gpu : gpus) {
    NvmlDevice device = nullptr;
    if (NvmlReturn r = nvml->handle_by_uuid(gpu.uuid().c_str(), &device); r != 0) {
      return fail(absl::StrCat("GPU ", gpu.index(), " (", gpu.uuid(), "): ", nvml->Error(r)));
    }
    nvml->devices[gpu.index()] = device;
  }
  return std::unique_ptr<GpuMemoryMonitor>(new GpuMemoryMonitor(std::move(nvml)));
}

GpuMemoryMonitor::GpuMemoryMonitor(std::unique_ptr<Nvml> nvml) : nvml_(std::move(nvml)) {}

GpuMemoryMonitor::~GpuMemoryMonitor() = default;

std::map<int32_t, int64_t> GpuMemoryMonitor::UsedBytes() const {
  std::map<int32_t, int64_t> used;
  for (const auto& [index, device] : nvml_->devices) {
    NvmlMemory memory{};
    if (nvml_->memory_info(device, &memory) == 0) {
      used[index] = static_cast<int64_t>(memory.used);
    }
  }
  return used;
}

}  // namespace quantd::worker
