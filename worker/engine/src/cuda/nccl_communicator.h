// The data-parallel communicator across the GPUs of one process (one thread per GPU), on NCCL:
// parallel/communicator.h's collectives of host buffers, staged through a device buffer of each
// rank's GPU. NCCL is loaded at run time (dlopen of libnccl.so.2) when a job asks for several
// GPUs, so the engine neither links nor needs it for one GPU. NVLink SHARP multicast stays off
// (NCCL_NVLS_ENABLE=0): it reserves GPU memory per communicator and is not needed for buffers of
// this size.
//
// Abort: any rank's Abort() aborts every communicator of the group (NCCL does not propagate a
// failure); ranks waiting for a collective poll their stream and return the error.
#ifndef QUANTD_ENGINE_CUDA_NCCL_COMMUNICATOR_H_
#define QUANTD_ENGINE_CUDA_NCCL_COMMUNICATOR_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "parallel/communicator.h"

namespace quantd::engine {

// A group over CUDA devices 0..ranks-1 (rank r on device r). Fails naming the cause when NCCL
// cannot be loaded or initialised, or fewer devices are visible.
absl::StatusOr<std::vector<std::unique_ptr<Communicator>>> CreateNcclGroup(int ranks);

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_CUDA_NCCL_COMMUNICATOR_H_
