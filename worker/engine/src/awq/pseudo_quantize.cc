#include "awq/pseudo_quantize.h"

#include <algorithm>
#include <cmath>

namespace quantd::engine {

void PseudoQuantizeGroup(float* w, int64_t n, DType md, uint8_t* codes, float* scale_out,
                         uint8_t* zero_out) {
  float mx = w[0];
  float mn = w[0];
  for (int64_t i = 1; i < n; ++i) {
    mx = std::max(mx, w[i]);
    mn = std::min(mn, w[i]);
  }
  const auto r = [md](float v) { return RoundTo(md, v); };
  // scale = clamp_min(mx - mn, 1e-5) / 15; the bound enters as fp(1e-5) in md and the division by
  // the integer max_int is a multiply by 1.0f/15.0f (PyTorch's CUDA scalar path).
  const float range = std::max(r(mx - mn), r(1e-5f));
  const float scale = r(range * (1.0f / static_cast<float>(kQuantMaxInt)));
  // zero = clamp(-round(mn / scale), 0, 15): ±inf from fp16 overflow saturates like PyTorch.
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

void PseudoQuantize(float* w, int64_t rows, int64_t cols, int64_t group, DType md,
                    const GroupQuantization& out) {
  const int64_t groups_per_row = cols / group;
  for (int64_t row = 0; row < rows; ++row) {
    for (int64_t g = 0; g < groups_per_row; ++g) {
      const int64_t offset = row * cols + g * group;
      const int64_t param = row * groups_per_row + g;
      PseudoQuantizeGroup(w + offset, group, md, out.codes ? out.codes + offset : nullptr,
                          out.scales ? out.scales + param : nullptr,
                          out.zeros ? out.zeros + param : nullptr);
    }
  }
}

}  // namespace quantd::engine
