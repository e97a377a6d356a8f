// The CUDA backend of the AWQ engine: the Backend interface (backend/backend.h) on one NVIDIA GPU.
// Activations stay in device memory when they fit; otherwise they are worked on in token chunks,
// the hidden states kept on the device or, when those do not fit either, in pinned host memory.
// Each decoder layer's weights are uploaded, searched, scaled, clipped, quantized and packed on
// the device, with the same decisions as the CPU reference.
//
// This header is plain C++ so that backend/backend.cc can include it in builds with
// QUANTD_HAVE_CUDA.
#ifndef QUANTD_ENGINE_CUDA_CUDA_BACKEND_H_
#define QUANTD_ENGINE_CUDA_CUDA_BACKEND_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "backend/backend.h"
#include "parallel/communicator.h"

namespace quantd::engine {

// True when the CUDA runtime sees at least one device.
bool CudaDeviceAvailable();

// How the backend places activations. The defaults follow the memory plan (everything resident
// when it fits); tests force the chunked and host-memory paths.
struct CudaBackendOptions {
  int64_t chunk_blocks = 0;            // calibration blocks per chunk; 0: from the memory plan
  bool hidden_states_on_host = false;  // pinned host memory even when the GPU has room
  int device = 0;                      // CUDA device ordinal
  // The data-parallel group this backend is one rank of (parallel/communicator.h; outlives the
  // backend); null: one GPU holding every calibration row.
  Communicator* comm = nullptr;
};

// The backend on options.device; fails (naming the cause) when that GPU is not usable.
absl::StatusOr<std::unique_ptr<Backend>> CreateCudaBackend(const CudaBackendOptions& options = {});

// Seconds spent in QuantizeLayer per phase, summed over all calls of this process on the calling
// thread's current device (one per data-parallel rank). Phases end at
// the layer's host synchronisations: `upload` (waiting for the staged weights, or uploading them),
// `forward` (captured forward and group statistics), `scale_search` (every group's grid losses),
// `finish` (scale folding, clip search, quantization, packing and the copies to the host).
// The device_* fields time the same phases on the device (CUDA events, from the end of the upload):
// where the host's time is longer, the device waited for the host.
struct CudaPhaseSeconds {
  double upload = 0, forward = 0, scale_search = 0, finish = 0;
  double device_forward = 0, device_scale_search = 0, device_finish = 0;
  // The quality report's share of the device time (Backend::SetHeldOut): the held-out forwards
  // (float and quantized layer) and the groups' round-to-nearest / AWQ comparisons.
  double device_held_out = 0, device_compare = 0;
};
CudaPhaseSeconds CudaPhaseTotals();

// The figures below are of the calling thread's current device.
// High-water mark of the device memory this process allocated through the backend, in bytes.
size_t CudaPeakDeviceBytes();
// Device memory this process holds through the backend now, in bytes.
size_t CudaDeviceBytesInUse();
// Seconds this process spent allocating device memory through the backend.
double CudaAllocationSeconds();

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_CUDA_CUDA_BACKEND_H_
