// GpuMemoryMonitor against a fake libnvidia-ml (tests/worker/fake_nvml): GPUs found by UUID, each
// one's used bytes per CUDA index, and a clear reason whenever it cannot report.
#include "gpu_memory_monitor.h"

#include <cstdlib>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace quantd::worker {
namespace {

using ::testing::HasSubstr;

v1::Gpu Gpu(int index, const std::string& uuid) {
  v1::Gpu gpu;
  gpu.set_index(index);
  gpu.set_uuid(uuid);
  return gpu;
}

class GpuMemoryMonitorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv("FAKE_NVML_DEVICES", "GPU-aaaa=1000,GPU-bbbb=2500", 1);
    unsetenv("FAKE_NVML_INIT_ERROR");
  }
};

TEST_F(GpuMemoryMonitorTest, ReportsEachGpuByItsCudaIndex) {
  std::string why;
  // CUDA's order need not be NVML's: GPUs are matched by UUID.
  auto monitor =
      GpuMemoryMonitor::Open({Gpu(0, "GPU-bbbb"), Gpu(1, "GPU-aaaa")}, &why, FAKE_NVML_LIBRARY);
  ASSERT_NE(monitor, nullptr) << why;
  EXPECT_EQ(monitor->UsedBytes(), (std::map<int32_t, int64_t>{{0, 2500}, {1, 1000}}));
}

TEST_F(GpuMemoryMonitorTest, SaysWhyItCannotReport) {
  std::string why;
  EXPECT_EQ(GpuMemoryMonitor::Open({}, &why, FAKE_NVML_LIBRARY), nullptr);
  EXPECT_EQ(why, "no GPU");
  EXPECT_EQ(GpuMemoryMonitor::Open({Gpu(0, "GPU-aaaa")}, &why, "/nonexistent/libnvidia-ml.so.1"),
            nullptr);
  EXPECT_THAT(why, HasSubstr("cannot load /nonexistent/libnvidia-ml.so.1"));
  EXPECT_EQ(GpuMemoryMonitor::Open({Gpu(3, "GPU-cccc")}, &why, FAKE_NVML_LIBRARY), nullptr);
  EXPECT_THAT(why, HasSubstr("GPU 3 (GPU-cccc): Not Found"));
  setenv("FAKE_NVML_INIT_ERROR", "9", 1);
  EXPECT_EQ(GpuMemoryMonitor::Open({Gpu(0, "GPU-aaaa")}, &why, FAKE_NVML_LIBRARY), nullptr);
  EXPECT_THAT(why, HasSubstr("nvmlInit_v2: Unknown Error (9)"));
}

}  // namespace
}  // namespace quantd::worker
