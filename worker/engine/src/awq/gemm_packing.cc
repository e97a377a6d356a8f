#include "awq/gemm_packing.h"

#include "core/dtype.h"
#include "core/fast_round.h"

namespace quantd::engine {
namespace {

// Packs a [rows, out] matrix of nibble values given by value(row, channel) into [rows, out / 8].
template <typename ValueFn>
std::vector<int32_t> PackRows(int64_t rows, int64_t out, ValueFn value) {
  const int64_t words = out / 8;
  std::vector<int32_t> packed(static_cast<size_t>(rows * words));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < words; ++c) {
      uint32_t word = 0;
      for (int i = 0; i < 8; ++i) {
        word |= (static_cast<uint32_t>(value(r, 8 * c + kAwqPackOrder[i])) & 0xFu) << (4 * i);
      }
      packed[static_cast<size_t>(r * words + c)] = static_cast<int32_t>(word);
    }
  }
  return packed;
}

uint8_t Nibble(const std::vector<int32_t>& packed, int64_t words, int64_t row, int64_t channel) {
  const uint32_t word =
      static_cast<uint32_t>(packed[static_cast<size_t>(row * words + channel / 8)]);
  return static_cast<uint8_t>((word >> (4 * kAwqReverseOrder[channel % 8])) & 0xFu);
}

}  // namespace

uint16_t ToHalfBits(DType dtype, float value) {
  return dtype == DType::kBF16 ? FloatToBf16(value) : FloatToF16(value);
}

float FromHalfBits(DType dtype, uint16_t bits) {
  return dtype == DType::kBF16 ? Bf16ToFloat(bits) : F16ToFloat(bits);
}

GemmPackedLinear PackGemm(const uint8_t* codes, const uint8_t* zeros, const float* scales,
                          int64_t out_features, int64_t in_features, int64_t group_size,
                          const std::optional<Tensor>& bias, DType scale_dtype) {
  GemmPackedLinear p;
  p.in_features = in_features;
  p.out_features = out_features;
  p.group_size = group_size;
  p.scale_dtype = scale_dtype;
  const int64_t groups = in_features / group_size;
  // Codes are [out, in]; the layout is transposed: qweight[k, c] covers channels 8c..8c+7 of row k.
  p.qweight = PackRows(in_features, out_features,
                       [&](int64_t k, int64_t n) { return codes[n * in_features + k]; });
  p.qzeros =
      PackRows(groups, out_features, [&](int64_t g, int64_t n) { return zeros[n * groups + g]; });
  p.scales.resize(static_cast<size_t>(groups * out_features));
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t n = 0; n < out_features; ++n) {
      p.scales[static_cast<size_t>(g * out_features + n)] =
          ToHalfBits(scale_dtype, scales[n * groups + g]);
    }
  }
  if (bias.has_value()) {
    std::vector<uint16_t> b(static_cast<size_t>(out_features));
    for (int64_t n = 0; n < out_features; ++n)
      b[static_cast<size_t>(n)] = ToHalfBits(scale_dtype, bias->data[n]);
    p.bias = std::move(b);
  }
  return p;
}

GemmPackedLinear ConcatOutputs(const std::vector<const GemmPackedLinear*>& parts) {
  GemmPackedLinear out;
  out.in_features = parts.front()->in_features;
  out.group_size = parts.front()->group_size;
  out.scale_dtype = parts.front()->scale_dtype;
  for (const GemmPackedLinear* p : parts) out.out_features += p->out_features;
  const int64_t groups = out.in_features / out.group_size;
  // Appends rows [rows, part_cols] of every part side by side into [rows, total_cols].
  auto join = [&](auto member, int64_t rows, int64_t divisor, auto* dst) {
    dst->reserve(static_cast<size_t>(rows * out.out_features / divisor));
    for (int64_t r = 0; r < rows; ++r) {
      for (const GemmPackedLinear* p : parts) {
        const int64_t cols = p->out_features / divisor;
        const auto& src = p->*member;
        dst->insert(dst->end(), src.begin() + r * cols, src.begin() + (r + 1) * cols);
      }
    }
  };
  join(&GemmPackedLinear::qweight, out.in_features, 8, &out.qweight);
  join(&GemmPackedLinear::qzeros, groups, 8, &out.qzeros);
  join(&GemmPackedLinear::scales, groups, 1, &out.scales);
  if (parts.front()->bias.has_value()) {
    out.bias.emplace();
    for (const GemmPackedLinear* p : parts) {
      out.bias->insert(out.bias->end(), p->bias->begin(), p->bias->end());
    }
  }
  return out;
}

UnpackedLinear UnpackGemm(const GemmPackedLinear& p) {
  const int64_t in = p.in_features;
  const int64_t out = p.out_features;
  const int64_t groups = in / p.group_size;
  const int64_t words = out / 8;
  UnpackedLinear u;
  u.codes.resize(static_cast<size_t>(out * in));
  u.zeros.resize(static_cast<size_t>(out * groups));
  u.scales.resize(static_cast<size_t>(out * groups));
  for (int64_t k = 0; k < in; ++k) {
    for (int64_t n = 0; n < out; ++n) u.codes[n * in + k] = Nibble(p.qweight, words, k, n);
  }
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t n = 0; n < out; ++n) {
      u.zeros[n * groups + g] = Nibble(p.qzeros, words, g, n);
      u.scales[n * groups + g] =
          FromHalfBits(p.scale_dtype, p.scales[static_cast<size_t>(g * out + n)]);
    }
  }
  return u;
}

Tensor DequantizeGemm(const GemmPackedLinear& p) {
  const UnpackedLinear u = UnpackGemm(p);
  const int64_t in = p.in_features;
  const int64_t groups = in / p.group_size;
  Tensor w({p.out_features, in});
  for (int64_t n = 0; n < p.out_features; ++n) {
    for (int64_t k = 0; k < in; ++k) {
      const int64_t g = n * groups + k / p.group_size;
      const float q = static_cast<float>(u.codes[n * in + k]) - static_cast<float>(u.zeros[g]);
      w.data[n * in + k] = FastRoundTo(p.scale_dtype, q * u.scales[g]);
    }
  }
  return w;
}

}  // namespace quantd::engine
