// AutoAWQ's apply_scale (spec/awq.md §4): fold a scale vector s into the op before a group of
// Linears (an RMSNorm or a Linear) and into the Linears' columns, and divide their cached inputs.
// Every step is one float32 operation rounded to md.
#ifndef QUANTD_ENGINE_AWQ_APPLY_SCALE_H_
#define QUANTD_ENGINE_AWQ_APPLY_SCALE_H_

#include <vector>

#include "core/dtype.h"
#include "core/tensor.h"
#include "model/layer_weights.h"

namespace quantd::engine {

// norm.weight /= s.
void DivideNorm(const std::vector<float>& s, DType md, Tensor* norm);

// Gemma's norms, which scale by 1 + weight: weight = ((weight + 1) / s) − 1, each step rounded to
// md as AutoAWQ's in-place `+= 1`, `div_`, `-= 1`.
void DivideOnePlusNorm(const std::vector<float>& s, DType md, Tensor* norm);

// The last len(s) output rows of prev (and its bias) /= s.
void DivideLinearRows(const std::vector<float>& s, DType md, LinearWeights* prev);

// weight[:, j] *= s[j].
void MultiplyColumns(const std::vector<float>& s, DType md, Tensor* weight);

// Cached inputs x [N, C]: x[:, j] /= s[j].
void DivideInputs(const std::vector<float>& s, DType md, Tensor* x);

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_AWQ_APPLY_SCALE_H_
