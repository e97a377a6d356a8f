#include "cuda/nccl_communicator.h"

#include <cuda_runtime.h>
#include <dlfcn.h>
#include <nccl.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "cuda/device_buffer.h"

namespace quantd::engine {
namespace {

// The NCCL entry points used, resolved from libnccl.so.2.
struct Nccl {
  decltype(&ncclCommInitAll) comm_init_all = nullptr;
  decltype(&ncclCommDestroy) comm_destroy = nullptr;
  decltype(&ncclCommAbort) comm_abort = nullptr;
  decltype(&ncclAllReduce) all_reduce = nullptr;
  decltype(&ncclBroadcast) broadcast = nullptr;
  decltype(&ncclGetErrorString) error_string = nullptr;
};

absl::StatusOr<const Nccl*> LoadNccl() {
  static std::mutex mu;
  static Nccl* loaded = nullptr;
  std::lock_guard<std::mutex> lock(mu);
  if (loaded != nullptr) return loaded;
  void* lib = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "gpus: a job on several GPUs needs NCCL (libnccl.so.2: Debian's libnccl2, or NVIDIA's), "
        "which cannot be loaded: ",
        dlerror()));
  }
  auto nccl = std::make_unique<Nccl>();
  bool ok = true;
  auto resolve = [&](auto* fn, const char* name) {
    *fn = reinterpret_cast<std::remove_pointer_t<decltype(fn)>>(dlsym(lib, name));
    ok = ok && *fn != nullptr;
  };
  resolve(&nccl->comm_init_all, "ncclCommInitAll");
  resolve(&nccl->comm_destroy, "ncclCommDestroy");
  resolve(&nccl->comm_abort, "ncclCommAbort");
  resolve(&nccl->all_reduce, "ncclAllReduce");
  resolve(&nccl->broadcast, "ncclBroadcast");
  resolve(&nccl->error_string, "ncclGetErrorString");
  if (!ok) {
    dlclose(lib);
    return absl::FailedPreconditionError("libnccl.so.2 lacks an NCCL 2 entry point");
  }
  loaded = nccl.release();  // loaded for the process's lifetime
  return loaded;
}

// What the ranks of one group share: their communicators (to abort them all) and the failure.
struct GroupState {
  const Nccl* nccl = nullptr;
  std::vector<ncclComm_t> comms;
  std::mutex mu;
  absl::Status aborted;
  std::atomic<bool> is_aborted{false};

  void Abort(const absl::Status& why) {
    std::lock_guard<std::mutex> lock(mu);
    if (is_aborted.exchange(true)) return;
    aborted = why.ok() ? absl::AbortedError("aborted") : why;
    for (ncclComm_t comm : comms) nccl->comm_abort(comm);
  }
  absl::Status Failure() {
    std::lock_guard<std::mutex> lock(mu);
    return aborted;
  }
};

class NcclCommunicator : public Communicator {
 public:
  NcclCommunicator(std::shared_ptr<GroupState> group, int rank)
      : group_(std::move(group)), rank_(rank) {}
  ~NcclCommunicator() override {
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
    if (!group_->is_aborted) group_->nccl->comm_destroy(comm());
  }

  int rank() const override { return rank_; }
  int size() const override { return static_cast<int>(group_->comms.size()); }

  absl::Status AllReduceSum(absl::Span<double> values) override {
    return Reduce(values.data(), values.size(), ncclDouble, sizeof(double));
  }
  absl::Status AllReduceSum(absl::Span<float> values) override {
    return Reduce(values.data(), values.size(), ncclFloat, sizeof(float));
  }

  absl::Status Broadcast(void* data, size_t bytes, int root) override {
    if (root < 0 || root >= size()) {
      return absl::InvalidArgumentError(absl::StrCat("broadcast root ", root, " of ", size()));
    }
    return Collective(data, bytes, [&](void* device) {
      return group_->nccl->broadcast(device, device, bytes, ncclUint8, root, comm(), stream_);
    });
  }

  absl::Status Barrier() override {
    float one = 1.0f;
    return Reduce(&one, 1, ncclFloat, sizeof(float));
  }

  void Abort(const absl::Status& why) override { group_->Abort(why); }

 private:
  ncclComm_t comm() const { return group_->comms[static_cast<size_t>(rank_)]; }

  absl::Status Reduce(void* data, size_t count, ncclDataType_t type, size_t size) {
    return Collective(data, count * size, [&](void* device) {
      return group_->nccl->all_reduce(device, device, count, type, ncclSum, comm(), stream_);
    });
  }

  // Host `data` to this rank's device buffer, `op` on it, back to `data`.
  template <typename Op>
  absl::Status Collective(void* data, size_t bytes, const Op& op) {
    if (group_->is_aborted) return group_->Failure();
    if (cudaError_t err = cudaSetDevice(rank_); err != cudaSuccess) {
      return cuda::CudaStatus(err, "cudaSetDevice (NCCL rank)");
    }
    if (stream_ == nullptr) {
      QUANTD_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    }
    if (bytes == 0) return absl::OkStatus();
    if (absl::Status s = staging_.Reserve(bytes); !s.ok()) return s;
    QUANTD_CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(staging_.as<void>(), data, bytes, cudaMemcpyHostToDevice, stream_));
    if (ncclResult_t r = op(staging_.as<void>()); r != ncclSuccess) {
      const absl::Status why = absl::InternalError(
          absl::StrCat("NCCL (rank ", rank_, "): ", group_->nccl->error_string(r)));
      group_->Abort(why);
      return why;
    }
    QUANTD_CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(data, staging_.as<void>(), bytes, cudaMemcpyDeviceToHost, stream_));
    // Polled rather than synchronised, so that an abort of the group frees a rank that waits
    // for a peer which will never come.
    while (true) {
      const cudaError_t state = cudaStreamQuery(stream_);
      if (state == cudaSuccess) return absl::OkStatus();
      if (state != cudaErrorNotReady) return cuda::CudaStatus(state, "NCCL collective");
      if (group_->is_aborted) return group_->Failure();
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
  }

  std::shared_ptr<GroupState> group_;
  const int rank_;
  cudaStream_t stream_ = nullptr;
  cuda::DeviceBuffer staging_;
};

}  // namespace

absl::StatusOr<std::vector<std::unique_ptr<Communicator>>> CreateNcclGroup(int ranks) {
  int visible = 0;
  if (cudaGetDeviceCount(&visible) != cudaSuccess) visible = 0;
  if (ranks > visible) {
    const char* env = std::getenv("CUDA_VISIBLE_DEVICES");
    return absl::FailedPreconditionError(
        absl::StrCat("gpus: ", ranks, " GPUs asked for, ", visible,
                     " visible (CUDA_VISIBLE_DEVICES=", env != nullptr ? env : "unset", ")"));
  }
  absl::StatusOr<const Nccl*> nccl = LoadNccl();
  if (!nccl.ok()) return nccl.status();
  setenv("NCCL_NVLS_ENABLE", "0", 1);  // no NVLink multicast (see the header)
  auto group = std::make_shared<GroupState>();
  group->nccl = *nccl;
  group->comms.resize(static_cast<size_t>(ranks));
  std::vector<int> devices(static_cast<size_t>(ranks));
  for (int r = 0; r < ranks; ++r) devices[static_cast<size_t>(r)] = r;
  if (ncclResult_t r = (*nccl)->comm_init_all(group->comms.data(), ranks, devices.data());
      r != ncclSuccess) {
    return absl::FailedPreconditionError(
        absl::StrCat("gpus: NCCL could not join ", ranks, " GPUs: ", (*nccl)->error_string(r)));
  }
  std::vector<std::unique_ptr<Communicator>> comms;
  for (int r = 0; r < ranks; ++r) comms.push_back(std::make_unique<NcclCommunicator>(group, r));
  return comms;
}

}  // namespace quantd::engine
