// The GPUs this worker offers, as the CUDA runtime reports them. Without CUDA support compiled in,
// or without a usable device, the list is empty and the worker offers CPU slots instead.
#ifndef QUANTD_WORKER_DAEMON_GPU_PROBE_H_
#define QUANTD_WORKER_DAEMON_GPU_PROBE_H_

#include <string>
#include <vector>

#include "quantd/v1/worker_service.pb.h"

namespace quantd::worker {

// `why_none` (optional) says why the list is empty.
std::vector<v1::Gpu> ProbeGpus(std::string* why_none);

}  // namespace quantd::worker

#endif  // QUANTD_WORKER_DAEMON_GPU_PROBE_H_
