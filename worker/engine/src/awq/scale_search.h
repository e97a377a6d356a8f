// AutoAWQ's activation-aware scale search (spec/awq.md §3): per-channel statistics, the 20-point
// duo-scaling grid and the choice of the best ratio. The loss of a trial is supplied by the caller
// (a backend), which runs the inspected module with the trial weights Q(W·s)/s.
#ifndef QUANTD_ENGINE_AWQ_SCALE_SEARCH_H_
#define QUANTD_ENGINE_AWQ_SCALE_SEARCH_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "awq/pseudo_quantize.h"
#include "core/dtype.h"
#include "core/tensor.h"

namespace quantd::engine {

inline constexpr int kScaleGridPoints = 20;  // ratios k/20, k = 0..19

// w_mean [C]: mean over the stacked rows of |W| normalised by each group's max |W| (+1e-6).
std::vector<float> WeightMean(const std::vector<const Tensor*>& weights, int64_t group, DType md);

// x_mean [C]: mean of |x| over all rows of x [N, C], accumulated in (at least) float32.
std::vector<float> InputMean(const Tensor& x, DType md);
// Its two steps (data-parallel ranks add their sums between them): the sums of |x| per column,
// and the mean of `rows` rows from such sums, rounded to md.
std::vector<double> InputAbsSums(const Tensor& x);
std::vector<float> InputMeanFromSums(const std::vector<double>& sums, int64_t rows, DType md);

// The normalised scale vector of grid point `ratio`: clamp_min(x^r / (w^(1-r) + 1e-4), 1e-4),
// divided by sqrt(max · min), inf/nan → 1.
std::vector<float> ScalesForRatio(const std::vector<float>& x_mean,
                                  const std::vector<float>& w_mean, double ratio, DType md);

// Trial weight: Q(W · s) / s with columns scaled by s [in]; out may alias nothing.
void ScaleQuantizeUnscale(const Tensor& w, const std::vector<float>& s, const QuantScheme& scheme,
                          DType md, Tensor* out);

struct ScaleSearchResult {
  int best_index = -1;  // k of the winning ratio k/20
  double best_ratio = 0.0;
  double best_loss = 0.0;
  std::vector<float> scales;   // the winning scale vector [C], values in md
  std::vector<double> losses;  // loss of every grid point
};

// The scale vector of every grid point k/20 (ScalesForRatio), in grid order.
std::vector<std::vector<float>> GridScales(const std::vector<float>& x_mean,
                                           const std::vector<float>& w_mean, DType md);

// The first strictly smallest of `losses` (one per grid point, in grid order), with its scale
// vector taken from `grid`. Fails when no loss is finite (AutoAWQ raises there too).
absl::StatusOr<ScaleSearchResult> PickBestScale(std::vector<std::vector<float>> grid,
                                                std::vector<double> losses);

// Evaluates every grid point with `trial_loss(s)` and keeps the first strictly smallest loss.
// Fails when no loss is finite (AutoAWQ raises there too).
absl::StatusOr<ScaleSearchResult> SearchBestScale(
    const std::vector<float>& x_mean, const std::vector<float>& w_mean, DType md,
    const std::function<absl::StatusOr<double>(const std::vector<float>& s)>& trial_loss);

// Mean squared error between a reference output and a trial output, as AutoAWQ's _compute_loss:
// both clamped to the finite range of md, the difference rounded to md, squares summed in double.
double OutputMse(const Tensor& ref, const Tensor& out, DType md);

// Clamps ±inf (and values beyond it) to the finite range of md, as torch.clip(finfo.min, max).
void ClampToFinite(Tensor* t, DType md);

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_AWQ_SCALE_SEARCH_H_
