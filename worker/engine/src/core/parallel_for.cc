#include "core/parallel_for.h"

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

namespace quantd::engine {

void ParallelFor(int64_t n, int max_threads, const std::function<void(int64_t)>& fn) {
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
