// Communicator: the collectives of data-parallel calibration (one job on several GPUs,
// docs/engine.md "Multi-GPU"). Each rank — one GPU, driven by one thread of the engine process —
// holds one Communicator of a group; every collective must be called by every rank of the group, in
// the same order, with buffers of the same size, and every rank leaves it with the same bytes.
//
// Implementations: the in-process one (below: threads of one process sharing host memory, no GPU;
// what CI tests the reductions with and what a one-GPU run goes through) and NCCL
// (cuda/nccl_communicator.h, CUDA builds with NCCL).
//
// Failure: a rank that stops (an error, a cancellation) Abort()s the group; every collective that
// is waiting or comes later returns that status instead of blocking forever.
#ifndef QUANTD_ENGINE_PARALLEL_COMMUNICATOR_H_
#define QUANTD_ENGINE_PARALLEL_COMMUNICATOR_H_

#include <cstddef>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"

namespace quantd::engine {

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;

  // Element-wise sum over the ranks, in place (host memory).
  virtual absl::Status AllReduceSum(absl::Span<double> values) = 0;
  virtual absl::Status AllReduceSum(absl::Span<float> values) = 0;
  // Every rank's `bytes` become root's.
  virtual absl::Status Broadcast(void* data, size_t bytes, int root) = 0;
  virtual absl::Status Barrier() = 0;
  // Fails every pending and later collective of the group with `why` (from any thread).
  virtual void Abort(const absl::Status& why) = 0;
};

// A group of `ranks` communicators of one process (threads): rank r is element r. The sum is taken
// in rank order by every rank, so the result is the same on all of them and the same in every run.
std::vector<std::unique_ptr<Communicator>> CreateInProcessGroup(int ranks);

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_PARALLEL_COMMUNICATOR_H_
