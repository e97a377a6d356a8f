// Tensor: a dense, row-major float32 array on the host, the CPU backend's working type. Weights of
// 16-bit checkpoints convert to float32 exactly; the dtype they came in is tracked separately
// (ModelConfig::dtype) wherever AutoAWQ's rounding to that dtype must be reproduced.
#ifndef QUANTD_ENGINE_CORE_TENSOR_H_
#define QUANTD_ENGINE_CORE_TENSOR_H_

#include <cstdint>
#include <numeric>
#include <vector>

namespace quantd::engine {

struct Tensor {
  std::vector<int64_t> shape;
  std::vector<float> data;

  Tensor() = default;
  explicit Tensor(std::vector<int64_t> s, float fill = 0.0f)
      : shape(std::move(s)), data(static_cast<size_t>(NumElements(shape)), fill) {}

  static int64_t NumElements(const std::vector<int64_t>& s) {
    return std::accumulate(s.begin(), s.end(), int64_t{1}, std::multiplies<int64_t>());
  }
  int64_t numel() const { return static_cast<int64_t>(data.size()); }
  int64_t dim(int i) const { return shape[static_cast<size_t>(i < 0 ? i + shape.size() : i)]; }
  int rank() const { return static_cast<int>(shape.size()); }
  float* ptr() { return data.data(); }
  const float* ptr() const { return data.data(); }
  bool empty() const { return data.empty(); }
};

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_CORE_TENSOR_H_
