// AutoAWQ's weight clipping search (spec/awq.md §5): per (output row, group) the symmetric clip
// bound max|W| · (1 − i/20), i = 0..9, that minimises the mean squared error of the group's partial
// dot products over sampled calibration tokens.
//
// Exact reformulation: for a group g the error of row o is mean_t (x_t,g · d_o,g)² with
// d = Q(clamp(W)) − W, i.e. d_o,gᵀ (X_gᵀ X_g) d_o,g / n_tok. The 128×128 Gram matrix of each
// group's sampled inputs replaces the token loop (same value up to float summation order).
#ifndef QUANTD_ENGINE_AWQ_CLIP_SEARCH_H_
#define QUANTD_ENGINE_AWQ_CLIP_SEARCH_H_

#include <cstdint>
#include <vector>

#include "awq/pseudo_quantize.h"
#include "core/dtype.h"
#include "core/tensor.h"

namespace quantd::engine {

inline constexpr int kClipShrinkSteps = 10;  // int(max_shrink 0.5 · n_grid 20)
inline constexpr int64_t kClipSampleTokens = 512;

struct ClipResult {
  Tensor max_val;                     // [out, in / group], values in md
  std::vector<uint8_t> shrink_index;  // [out · in / group]: i of the chosen bound m0 · (1 − i/20)
};

// The calibration rows the clip search uses: 0, step, 2·step, … with step = max(1, N / 512).
Tensor SampleClipTokens(const Tensor& x);
// That step for N rows (data-parallel ranks sample all ranks' rows with it).
int64_t ClipSampleStep(int64_t rows);

// Searches the clip bound of every (row, group) of w [out, in] given sampled inputs [n_tok, in];
// the trials quantize with `scheme` (per-channel: one group per row, as AutoAWQ's ci).
ClipResult SearchBestClip(const Tensor& w, const Tensor& sampled_x, const QuantScheme& scheme,
                          DType md);

// w[o, j] = clamp(w[o, j], −max_val[o, j / group], max_val[o, j / group]).
void ApplyClip(const Tensor& max_val, int64_t group, Tensor* w);

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_AWQ_CLIP_SEARCH_H_
