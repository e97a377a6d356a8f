// The last AWQ step of a Linear (spec/awq.md §2.4, §7.1): cast the scaled and clipped weight to
// the scale dtype (AutoAWQ: float16), quantize it group-wise and pack it in the GEMM layout.
#ifndef QUANTD_ENGINE_AWQ_QUANTIZE_LINEAR_H_
#define QUANTD_ENGINE_AWQ_QUANTIZE_LINEAR_H_

#include <vector>

#include "awq/gemm_packing.h"
#include "awq/pseudo_quantize.h"
#include "core/tensor.h"
#include "model/layer_weights.h"

namespace quantd::engine {

// The codes are emitted directly from the quantizer instead of being recomputed from the
// dequantized weight as WQLinear_GEMM.from_linear does; spec §7.1 shows both give the same codes.
// scale_dtype kF16 is AutoAWQ's _apply_quant (module.half()); kBF16 quantizes in bfloat16 so
// that the codes are chosen for the scales the checkpoint stores.
GemmPackedLinear QuantizeLinearGemm(const LinearWeights& linear, const QuantScheme& scheme,
                                    DType scale_dtype = DType::kF16);

// Mean squared error over all tokens and outputs of x · (W_trial − W)ᵀ for the n inputs x [n, C]:
// the loss of a group whose inspected module is the Linear itself, without rerunning the Linear.
// With at least as many tokens as columns it is the quadratic form in xᵀx (computed once, each
// trial costs out · C²); with fewer the direct product costs n / C of that (a 7B down_proj on a
// few hundred calibration tokens: 1/50).
class LinearOutputMse {
 public:
  explicit LinearOutputMse(const Tensor& x);  // x outlives this
  double operator()(const Tensor& w, const Tensor& w_trial) const;

 private:
  const Tensor& x_;
  std::vector<float> gram_;  // [C, C]; empty: the direct product
};

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_AWQ_QUANTIZE_LINEAR_H_
