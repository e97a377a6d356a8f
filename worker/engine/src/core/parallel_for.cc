#include "core/parallel_for.h"

#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

namespace quantd::engine {

int CpuThreads() { return std::max(1, openblas_get_num_threads()); }

void ParallelFor(int64_t n, int64_t grain, absl::FunctionRef<void(int64_t, int64_t)> fn) {
  if (n <= 0) return;
  const int64_t chunks =
      std::clamp<int64_t>(n / std::max<int64_t>(grain, 1), 1, static_cast<int64_t>(CpuThreads()));
  if (chunks == 1) {
    fn(0, n);
    return;
  }
  const int64_t per = (n + chunks - 1) / chunks;
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(chunks - 1));
  for (int64_t c = 1; c < chunks; ++c) {
    const int64_t begin = c * per;
    const int64_t end = std::min(n, begin + per);
    if (begin < end) threads.emplace_back([&fn, begin, end] { fn(begin, end); });
  }
  fn(0, std::min(n, per));
  for (std::thread& t : threads) t.join();
}

void ParallelForEach(int64_t n, int max_threads, const std::function<void(int64_t)>& fn) {
  std::atomic<int64_t> next{0};
  auto work = [&] {
    for (int64_t i = next++; i < n; i = next++) fn(i);
  };
  const int64_t threads = std::clamp<int64_t>(n, 1, std::max(1, max_threads));
  std::vector<std::thread> pool;
  pool.reserve(static_cast<size_t>(threads - 1));
  for (int64_t t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (std::thread& t : pool) t.join();
}

int HostThreads(int cap) {
  return std::clamp(static_cast<int>(std::thread::hardware_concurrency()), 1, std::max(1, cap));
}

}  // namespace quantd::engine
