#include "awq/apply_scale.h"

#include "core/fast_round.h"
namespace quantd::engine {
namespace {

// x[i, j] = op(x[i, j], s[j]) for a row-major [rows, s.size()] block.
template <typename Op>
void PerColumn(const std::vector<float>& s, DType md, float* x, int64_t rows, Op op) {
  const int64_t cols = static_cast<int64_t>(s.size());
  for (int64_t i = 0; i < rows; ++i) {
    float* row = x + i * cols;
    for (int64_t j = 0; j < cols; ++j)
      row[j] = FastRoundTo(md, op(row[j], s[static_cast<size_t>(j)]));
  }
}

float Divide(float a, float b) { return a / b; }
float Multiply(float a, float b) { return a * b; }

}  // namespace

void DivideNorm(const std::vector<float>& s, DType md, Tensor* norm) {
  PerColumn(s, md, norm->ptr(), 1, Divide);
}

void DivideOnePlusNorm(const std::vector<float>& s, DType md, Tensor* norm) {
  float* w = norm->ptr();
  for (size_t j = 0; j < s.size(); ++j) {
    const float plus_one = FastRoundTo(md, w[j] + 1.0f);
    w[j] = FastRoundTo(md, FastRoundTo(md, plus_one / s[j]) - 1.0f);
  }
}

void DivideLinearRows(const std::vector<float>& s, DType md, LinearWeights* prev) {
  const int64_t n = static_cast<int64_t>(s.size());
  const int64_t cols = prev->in_features();
  const int64_t first = prev->out_features() - n;
  for (int64_t i = 0; i < n; ++i) {
    float* row = prev->weight.ptr() + (first + i) * cols;
    for (int64_t j = 0; j < cols; ++j) row[j] = FastRoundTo(md, row[j] / s[static_cast<size_t>(i)]);
  }
  if (prev->bias.has_value()) DivideNorm(s, md, &*prev->bias);
}

void MultiplyColumns(const std::vector<float>& s, DType md, Tensor* weight) {
  PerColumn(s, md, weight->ptr(), weight->dim(0), Multiply);
}

void DivideInputs(const std::vector<float>& s, DType md, Tensor* x) {
  PerColumn(s, md, x->ptr(), x->dim(0), Divide);
}

}  // namespace quantd::engine
