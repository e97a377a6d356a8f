// A stand-in for the driver's libnvidia-ml.so.1 with the five functions GpuMemoryMonitor uses, so
// that its loading, UUID lookup and memory query are tested without a GPU. Devices and their used
// bytes come from FAKE_NVML_DEVICES="UUID=BYTES,UUID=BYTES" (read by nvmlInit_v2); with
// FAKE_NVML_INIT_ERROR=N, nvmlInit_v2 fails with N. Return codes as NVML's: 0 success, 6 not found.
#include <cstdlib>
#include <string>
#include <vector>

namespace {

struct Device {
  std::string uuid;
  unsigned long long used;
};
std::vector<Device>& Devices() {
  static std::vector<Device> devices;
  return devices;
}

}  // namespace

extern "C" {

struct NvmlMemory {
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
};

int nvmlInit_v2() {
  if (const char* error = std::getenv("FAKE_NVML_INIT_ERROR")) return std::atoi(error);
  Devices().clear();
  const char* spec = std::getenv("FAKE_NVML_DEVICES");
  std::string rest = spec != nullptr ? spec : "";
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    const std::string item = rest.substr(0, comma);
    rest = comma == std::string::npos ? "" : rest.substr(comma + 1);
    const size_t eq = item.find('=');
    Devices().push_back({item.substr(0, eq), std::strtoull(item.c_str() + eq + 1, nullptr, 10)});
  }
  return 0;
}

int nvmlShutdown() { return 0; }

const char* nvmlErrorString(int code) { return code == 6 ? "Not Found" : "Unknown Error"; }

int nvmlDeviceGetHandleByUUID(const char* uuid, void** device) {
  for (Device& d : Devices()) {
    if (d.uuid == uuid) {
      *device = &d;
      return 0;
    }
  }
  return 6;
}

int nvmlDeviceGetMemoryInfo(void* device, NvmlMemory* memory) {
  const Device* d = static_cast<const Device*>(device);
  *memory = {80ULL << 30, (80ULL << 30) - d->used, d->used};
  return 0;
}

}  // extern "C"
