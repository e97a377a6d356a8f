#include "awq/scale_search.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "awq/pseudo_quantize.h"
#include "core/fast_round.h"
#include "core/parallel_for.h"

namespace quantd::engine {
namespace {

float MaxFinite(DType md) {
  switch (md) {
    case DType::kF16:
      return 65504.0f;
    case DType::kBF16:
      return Bf16ToFloat(0x7f7f);
    default:
      return std::numeric_limits<float>::max();
  }
}

// torch.pow special-cases the exponents 0, 1 and 0.5 (fill 1, copy, sqrt).
float Pow(float x, float e) {
  if (e == 0.0f) return 1.0f;
  if (e == 1.0f) return x;
  if (e == 0.5f) return std::sqrt(x);
  return std::pow(x, e);
}

}  // namespace

std::vector<float> WeightMean(const std::vector<const Tensor*>& weights, int64_t group, DType md) {
  const int64_t cols = weights.front()->dim(1);
  std::vector<double> sum(static_cast<size_t>(cols), 0.0);
  int64_t rows = 0;
  const float eps = 1e-6f;
  for (const Tensor* w : weights) {
    const int64_t r = w->dim(0);
    rows += r;
    for (int64_t i = 0; i < r; ++i) {
      const float* row = w->ptr() + i * cols;
      for (int64_t g0 = 0; g0 < cols; g0 += group) {
        float amax = 0.0f;
        for (int64_t j = g0; j < g0 + group; ++j) amax = std::max(amax, std::fabs(row[j]));
        const float denom = FastRoundTo(md, amax + eps);
        for (int64_t j = g0; j < g0 + group; ++j) {
          sum[static_cast<size_t>(j)] += FastRoundTo(md, std::fabs(row[j]) / denom);
        }
      }
    }
  }
  std::vector<float> mean(static_cast<size_t>(cols));
  const float inv = 1.0f / static_cast<float>(rows);
  for (int64_t j = 0; j < cols; ++j) {
    mean[static_cast<size_t>(j)] =
        FastRoundTo(md, static_cast<float>(sum[static_cast<size_t>(j)]) * inv);
  }
  return mean;
}

std::vector<double> InputAbsSums(const Tensor& x) {
  const int64_t n = x.dim(0);
  const int64_t c = x.dim(1);
  std::vector<double> sum(static_cast<size_t>(c), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    const float* row = x.ptr() + i * c;
    for (int64_t j = 0; j < c; ++j) sum[static_cast<size_t>(j)] += std::fabs(row[j]);
  }
  return sum;
}

std::vector<float> InputMeanFromSums(const std::vector<double>& sums, int64_t rows, DType md) {
  std::vector<float> mean(sums.size());
  const float inv = 1.0f / static_cast<float>(rows);
  for (size_t j = 0; j < sums.size(); ++j) {
    mean[j] = FastRoundTo(md, static_cast<float>(sums[j]) * inv);
  }
  return mean;
}

std::vector<float> InputMean(const Tensor& x, DType md) {
  return InputMeanFromSums(InputAbsSums(x), x.dim(0), md);
}

std::vector<float> ScalesForRatio(const std::vector<float>& x_mean,
                                  const std::vector<float>& w_mean, double ratio, DType md) {
  const float rx = static_cast<float>(ratio);
  const float rw = static_cast<float>(1.0 - ratio);
  const float eps = FastRoundTo(md, 1e-4f);
  std::vector<float> s(x_mean.size());
  for (size_t j = 0; j < s.size(); ++j) {
    const float num = FastRoundTo(md, Pow(x_mean[j], rx));
    const float den = FastRoundTo(md, FastRoundTo(md, Pow(w_mean[j], rw)) + 1e-4f);
    s[j] = std::max(FastRoundTo(md, num / den), eps);
  }
  const auto [lo, hi] = std::minmax_element(s.begin(), s.end());
  const float norm = FastRoundTo(md, std::sqrt(FastRoundTo(md, *hi * *lo)));
  for (float& v : s) {
    v = FastRoundTo(md, v / norm);
    if (std::isinf(v) || std::isnan(v)) v = 1.0f;
  }
  return s;
}

void ScaleQuantizeUnscale(const Tensor& w, const std::vector<float>& s, const QuantScheme& scheme,
                          DType md, Tensor* out) {
  const int64_t rows = w.dim(0);
  const int64_t cols = w.dim(1);
  out->shape = w.shape;
  out->data.resize(w.data.size());
  ParallelFor(rows, RowGrain(cols), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const float* src = w.ptr() + i * cols;
      float* dst = out->ptr() + i * cols;
      for (int64_t j = 0; j < cols; ++j) {
        dst[j] = FastRoundTo(md, src[j] * s[static_cast<size_t>(j)]);
      }
      PseudoQuantize(dst, 1, cols, scheme, md);  // one row: no nested threads
      for (int64_t j = 0; j < cols; ++j) {
        dst[j] = FastRoundTo(md, dst[j] / s[static_cast<size_t>(j)]);
      }
    }
  });
}

std::vector<std::vector<float>> GridScales(const std::vector<float>& x_mean,
                                           const std::vector<float>& w_mean, DType md) {
  std::vector<std::vector<float>> grid;
  grid.reserve(kScaleGridPoints);
  for (int k = 0; k < kScaleGridPoints; ++k) {
    grid.push_back(ScalesForRatio(x_mean, w_mean, static_cast<double>(k) / kScaleGridPoints, md));
  }
  return grid;
}

absl::StatusOr<ScaleSearchResult> PickBestScale(std::vector<std::vector<float>> grid,
                                                std::vector<double> losses) {
  ScaleSearchResult result;
  result.best_loss = std::numeric_limits<double>::infinity();
  for (int k = 0; k < static_cast<int>(losses.size()); ++k) {
    if (losses[k] < result.best_loss) {  // strict: ties keep the earliest ratio
      result.best_loss = losses[k];
      result.best_index = k;
    }
  }
  if (result.best_index < 0) {
    return absl::InternalError(
        absl::StrCat("AWQ scale search: no grid point gave a finite loss (NaN in the layer "
                     "output); losses of ",
                     losses.size(), " ratios were all NaN or inf"));
  }
  result.best_ratio = static_cast<double>(result.best_index) / kScaleGridPoints;
  result.scales = std::move(grid[result.best_index]);
  result.losses = std::move(losses);
  return result;
}

absl::StatusOr<ScaleSearchResult> SearchBestScale(
    const std::vector<float>& x_mean, const std::vector<float>& w_mean, DType md,
    const std::function<absl::StatusOr<double>(const std::vector<float>& s)>& trial_loss) {
  std::vector<std::vector<float>> grid = GridScales(x_mean, w_mean, md);
  std::vector<double> losses;
  losses.reserve(grid.size());
  for (const std::vector<float>& s : grid) {
    absl::StatusOr<double> loss = trial_loss(s);
    if (!loss.ok()) return loss.status();
    losses.push_back(*loss);
  }
  return PickBestScale(std::move(grid), std::move(losses));
}

void ClampToFinite(Tensor* t, DType md) {
  const float hi = MaxFinite(md);
  for (float& v : t->data) v = std::clamp(v, -hi, hi);
}

double OutputMse(const Tensor& ref, const Tensor& out, DType md) {
  const float hi = MaxFinite(md);
  double total = 0.0;
  const int64_t n = ref.numel();
  for (int64_t i = 0; i < n; ++i) {
    const float a = std::clamp(ref.data[i], -hi, hi);
    const float b = std::clamp(out.data[i], -hi, hi);
    const double d = FastRoundTo(md, a - b);
    total += d * d;
  }
  return total / static_cast<double>(n);
}

}  // namespace quantd::engine
