// Host loops on several threads. ParallelFor: row ranges of the CPU reference's elementwise steps
// around BLAS (trial quantization, clip trials, rounding), which on one thread took most of a
// large layer's time. ParallelForEach: independent, memory-bound items of unequal size (reading a
// decoder layer's tensors, digesting kept layers), taken one at a time by the next free thread.
#ifndef QUANTD_ENGINE_CORE_PARALLEL_FOR_H_
#define QUANTD_ENGINE_CORE_PARALLEL_FOR_H_

#include <algorithm>
#include <cstdint>
#include <functional>

#include "absl/functional/function_ref.h"

namespace quantd::engine {

// Threads the CPU backend uses: the same as its BLAS (OpenBLAS honours OPENBLAS_NUM_THREADS and
// OMP_NUM_THREADS, else one per core), so one setting bounds both.
int CpuThreads();

// Calls fn(begin, end) on disjoint ranges covering [0, n), at least `grain` indices each, on up
// to CpuThreads() threads, and returns when all have run. Each index is handled by exactly one
// call, so results are the same for any thread count when fn writes only its own range.
void ParallelFor(int64_t n, int64_t grain, absl::FunctionRef<void(int64_t, int64_t)> fn);

// A grain for loops over rows of `cols` elements: a thread gets at least 64 Ki elements, below
// which starting it costs more than it saves.
// Runs fn(i) once for every i in [0, n), on at most `max_threads` threads (the caller's among
// them), in no particular order; returns when all have run. Each item computes exactly what it
// would on one thread.
void ParallelForEach(int64_t n, int max_threads, const std::function<void(int64_t)>& fn);

// The machine's hardware threads, at least 1 and at most `cap`.
int HostThreads(int cap);

inline int64_t RowGrain(int64_t cols) { return std::max<int64_t>(1, (int64_t{1} << 16) / cols); }

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_CORE_PARALLEL_FOR_H_
