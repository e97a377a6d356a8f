// DataParallelBackend: one Backend made of N rank backends — one per GPU (CUDA), or per thread
// (CPU) — that together run one job's calibration (docs/engine.md, "Multi-GPU"). The pipeline
// drives it like any backend:
// - Embed splits the token blocks into N contiguous runs (memory_plan::RankFirstBlock, the split
//   the scheduler plans each GPU for); each rank embeds and keeps its own.
// - QuantizeLayer hands every rank the same layer weights (read once from disk by the pipeline,
//   copied in host memory, uploaded by each rank to its device) and runs the ranks in parallel,
//   one thread each. The ranks' searches meet in their Communicator (communicator.h) wherever
//   AutoAWQ's statistics span the calibration rows (parallel/sharded_statistics.h), so every rank
//   takes the same decisions; this class checks that they did and returns rank 0's layer, which
//   the pipeline's single exporter writes.
// - ForwardLayer / NextTokenNll run each rank on its blocks (the NLLs summed in rank order).
// A run on one GPU is the same code with a group of one.
//
// A rank that fails aborts the group (the others' collectives return its error) and the call
// returns the first rank's error; the backend is then unusable (the job fails).
#ifndef QUANTD_ENGINE_PARALLEL_DATA_PARALLEL_BACKEND_H_
#define QUANTD_ENGINE_PARALLEL_DATA_PARALLEL_BACKEND_H_

#include <functional>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "backend/backend.h"
#include "parallel/communicator.h"

namespace quantd::engine {

// `ranks` ranks of backend `kind`: CPU ranks are threads sharing the in-process communicator;
// CUDA ranks are devices 0..ranks-1 (of CUDA_VISIBLE_DEVICES), one thread each, joined by NCCL.
absl::StatusOr<std::unique_ptr<Backend>> CreateDataParallelBackend(BackendKind kind, int ranks);

// Over a given group (tests): rank r's backend is make_rank(comms[r]).
std::unique_ptr<Backend> CreateDataParallelBackend(
    std::vector<std::unique_ptr<Communicator>> comms,
    const std::function<std::unique_ptr<Backend>(Communicator*)>& make_rank);

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_PARALLEL_DATA_PARALLEL_BACKEND_H_
