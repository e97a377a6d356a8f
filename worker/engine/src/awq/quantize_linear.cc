#include "awq/quantize_linear.h"

#include "awq/pseudo_quantize.h"
#include "core/dtype.h"
#include "core/fast_round.h"
#include "core/matmul.h"

namespace quantd::engine {

GemmPackedLinear QuantizeLinearGemm(const LinearWeights& linear, const QuantScheme& scheme,
                                    DType scale_dtype) {
  const int64_t out = linear.out_features();
  const int64_t in = linear.in_features();
  const int64_t group_size = scheme.GroupFor(in);
  const int64_t groups = in / group_size;
  Tensor w = linear.weight;
  for (float& v : w.data) v = FastRoundTo(scale_dtype, v);  // _apply_quant: module.half()
  std::vector<uint8_t> codes(static_cast<size_t>(out * in));
  std::vector<uint8_t> zeros(static_cast<size_t>(out * groups));
  std::vector<float> scales(static_cast<size_t>(out * groups));
  PseudoQuantize(w.ptr(), out, in, scheme, scale_dtype,
                 {.codes = codes.data(), .scales = scales.data(), .zeros = zeros.data()});
  return PackGemm(codes.data(), zeros.data(), scales.data(), out, in, group_size, linear.bias,
                  scale_dtype);
}

double LinearOutputMse(const std::vector<float>& gram, const Tensor& w, const Tensor& w_trial,
                       int64_t n_tokens) {
  const int64_t out = w.dim(0);
  const int64_t c = w.dim(1);
  std::vector<float> diff(w.data.size());
  for (size_t i = 0; i < diff.size(); ++i) diff[i] = w_trial.data[i] - w.data[i];
  std::vector<float> diff_gram(diff.size());
  MatMul(diff.data(), gram.data(), diff_gram.data(), out, c, c);
  double total = 0.0;
  for (size_t i = 0; i < diff.size(); ++i) total += static_cast<double>(diff[i]) * diff_gram[i];
  return total / static_cast<double>(n_tokens * out);
}

}  // namespace quantd::engine
