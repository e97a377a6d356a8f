// ParallelFor: independent host work items spread over a few threads. For work that is
// memory-bound and splits into items whose results do not depend on the order they run in
// (reading a decoder layer's tensors, digesting kept layers): each item computes exactly what it
// would on one thread.
#ifndef QUANTD_ENGINE_CORE_PARALLEL_FOR_H_
#define QUANTD_ENGINE_CORE_PARALLEL_FOR_H_

#include <cstdint>
#include <functional>

namespace quantd::engine {

// Runs fn(i) once for every i in [0, n), on at most `max_threads` threads (the caller's among
// them), in no particular order; returns when all have run.
void ParallelFor(int64_t n, int max_threads, const std::function<void(int64_t)>& fn);

// The machine's hardware threads, at least 1 and at most `cap`.
int HostThreads(int cap);

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_CORE_PARALLEL_FOR_H_
