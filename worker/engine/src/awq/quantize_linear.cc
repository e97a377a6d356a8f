#include "awq/quantize_linear.h"

#include "awq/pseudo_quantize.h"
#include "core/dtype.h"
#include "core/fast_round.h"
#include "core/matmul.h"
#include "core/parallel_for.h"

namespace quantd::engine {

GemmPackedLinear QuantizeLinearGemm(const LinearWeights& linear, const QuantScheme& scheme,
                                    DType scale_dtype) {
  const int64_t out = linear.out_features();
  const int64_t in = linear.in_features();
  const int64_t group_size = scheme.GroupFor(in);
  const int64_t groups = in / group_size;
  Tensor w = linear.weight;
  ParallelFor(out, RowGrain(in), [&](int64_t begin, int64_t end) {  // _apply_quant: module.half()
    for (float* v = w.ptr() + begin * in; v != w.ptr() + end * in; ++v) {
      *v = FastRoundTo(scale_dtype, *v);
    }
  });
  std::vector<uint8_t> codes(static_cast<size_t>(out * in));
  std::vector<uint8_t> zeros(static_cast<size_t>(out * groups));
  std::vector<float> scales(static_cast<size_t>(out * groups));
  PseudoQuantize(w.ptr(), out, in, scheme, scale_dtype,
                 {.codes = codes.data(), .scales = scales.data(), .zeros = zeros.data()});
  return PackGemm(codes.data(), zeros.data(), scales.data(), out, in, group_size, linear.bias,
                  scale_dtype);
}

LinearOutputMse::LinearOutputMse(const Tensor& x) : x_(x) {
  const int64_t c = x.dim(1);
  if (x.dim(0) >= c) {
    gram_.resize(static_cast<size_t>(c * c));
    Gram(x.ptr(), x.dim(0), c, c, gram_.data());
  }
}

double LinearOutputMse::operator()(const Tensor& w, const Tensor& w_trial) const {
  const int64_t n = x_.dim(0);
  const int64_t out = w.dim(0);
  const int64_t c = w.dim(1);
  std::vector<float> diff(w.data.size());
  ParallelFor(out, RowGrain(c), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin * c; i < end * c; ++i) {
      const auto k = static_cast<size_t>(i);
      diff[k] = w_trial.data[k] - w.data[k];
    }
  });
  double total = 0.0;
  if (gram_.empty()) {
    std::vector<float> out_diff(static_cast<size_t>(n * out));
    MatMulTransB(x_.ptr(), diff.data(), out_diff.data(), n, out, c);
    for (const float v : out_diff) total += static_cast<double>(v) * v;
  } else {
    std::vector<float> diff_gram(diff.size());
    MatMul(diff.data(), gram_.data(), diff_gram.data(), out, c, c);
    for (size_t i = 0; i < diff.size(); ++i) total += static_cast<double>(diff[i]) * diff_gram[i];
  }
  return total / static_cast<double>(n * out);
}

}  // namespace quantd::engine
