#include "awq/pseudo_quantize.h"

#include <algorithm>
#include <cmath>

#include "core/fast_round.h"
#include "core/parallel_for.h"

namespace quantd::engine {
namespace {

// zero_point=True: scale = clamp_min(mx − mn, 1e-5) / 15, zero = clamp(−round(mn / scale), 0, 15),
// q = clamp(round(w / scale) + zero, 0, 15).
void AsymmetricGroup(float* w, int64_t n, DType md, uint8_t* codes, float* scale_out,
                     uint8_t* zero_out) {
  float mx = w[0];
  float mn = w[0];
  for (int64_t i = 1; i < n; ++i) {
    mx = std::max(mx, w[i]);
    mn = std::min(mn, w[i]);
  }
  const auto r = [md](float v) { return FastRoundTo(md, v); };
  // The bound enters as fp(1e-5) in md and the division by the integer max_int is a multiply by
  // 1.0f/15.0f (PyTorch's CUDA scalar path).
  const float range = std::max(r(mx - mn), r(1e-5f));
  const float scale = r(range * (1.0f / static_cast<float>(kQuantMaxInt)));
  // ±inf from fp16 overflow saturates like PyTorch.
  const float zero =
      std::clamp(-std::nearbyint(r(mn / scale)), 0.0f, static_cast<float>(kQuantMaxInt));
  for (int64_t i = 0; i < n; ++i) {
    const float q = std::clamp(r(std::nearbyint(r(w[i] / scale)) + zero), 0.0f,
                               static_cast<float>(kQuantMaxInt));
    if (codes != nullptr) codes[i] = static_cast<uint8_t>(q);
    w[i] = r((q - zero) * scale);
  }
  if (scale_out != nullptr) *scale_out = scale;
  if (zero_out != nullptr) *zero_out = static_cast<uint8_t>(zero);
}

// zero_point=False: scale = clamp_min(amax|w|, 1e-5) / 7, q = clamp(round(w / scale), −8, 7),
// w ← q · scale; the code is stored as q + 8.
void SymmetricGroup(float* w, int64_t n, DType md, uint8_t* codes, float* scale_out,
                    uint8_t* zero_out) {
  float amax = 0.0f;
  for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(w[i]));
  const auto r = [md](float v) { return FastRoundTo(md, v); };
  constexpr float kMaxInt = static_cast<float>(kSymmetricZero - 1);  // 7
  constexpr float kMinInt = -static_cast<float>(kSymmetricZero);     // -8
  const float scale = r(std::max(amax, r(1e-5f)) * (1.0f / kMaxInt));
  for (int64_t i = 0; i < n; ++i) {
    const float q = std::clamp(std::nearbyint(r(w[i] / scale)), kMinInt, kMaxInt);
    if (codes != nullptr) codes[i] = static_cast<uint8_t>(q + static_cast<float>(kSymmetricZero));
    w[i] = r(q * scale);
  }
  if (scale_out != nullptr) *scale_out = scale;
  if (zero_out != nullptr) *zero_out = static_cast<uint8_t>(kSymmetricZero);
}

}  // namespace

void PseudoQuantizeGroup(float* w, int64_t n, DType md, bool zero_point, uint8_t* codes,
                         float* scale, uint8_t* zero) {
  if (zero_point) {
    AsymmetricGroup(w, n, md, codes, scale, zero);
  } else {
    SymmetricGroup(w, n, md, codes, scale, zero);
  }
}

void PseudoQuantize(float* w, int64_t rows, int64_t cols, const QuantScheme& scheme, DType md,
                    const GroupQuantization& out) {
  const int64_t group = scheme.GroupFor(cols);
  const int64_t groups_per_row = cols / group;
  ParallelFor(rows, RowGrain(cols), [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      for (int64_t g = 0; g < groups_per_row; ++g) {
        const int64_t offset = row * cols + g * group;
        const int64_t param = row * groups_per_row + g;
        PseudoQuantizeGroup(
            w + offset, group, md, scheme.zero_point, out.codes ? out.codes + offset : nullptr,
            out.scales ? out.scales + param : nullptr, out.zeros ? out.zeros + param : nullptr);
      }
    }
  });
}

}  // namespace quantd::engine
