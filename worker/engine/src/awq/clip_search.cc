#include "awq/clip_search.h"

#include <algorithm>
#include <cmath>

#include "awq/pseudo_quantize.h"
#include "core/fast_round.h"
#include "core/matmul.h"
#include "core/parallel_for.h"

namespace quantd::engine {

int64_t ClipSampleStep(int64_t rows) { return std::max<int64_t>(1, rows / kClipSampleTokens); }

Tensor SampleClipTokens(const Tensor& x) {
  const int64_t n = x.dim(0);
  const int64_t c = x.dim(1);
  const int64_t step = ClipSampleStep(n);
  const int64_t kept = (n + step - 1) / step;
  Tensor out({kept, c});
  for (int64_t t = 0; t < kept; ++t) {
    std::copy_n(x.ptr() + t * step * c, c, out.ptr() + t * c);
  }
  return out;
}

ClipResult SearchBestClip(const Tensor& w, const Tensor& sampled_x, const QuantScheme& scheme,
                          DType md) {
  const int64_t rows = w.dim(0);
  const int64_t cols = w.dim(1);
  const int64_t group = scheme.GroupFor(cols);
  const int64_t groups = cols / group;
  const int64_t n_tok = sampled_x.dim(0);
  ClipResult result;
  result.max_val = Tensor({rows, groups});
  result.shrink_index.assign(static_cast<size_t>(rows * groups), 0);

  std::vector<float> w_group(static_cast<size_t>(rows * group));
  std::vector<float> trial(static_cast<size_t>(rows * group));
  std::vector<float> ref(static_cast<size_t>(n_tok * rows));
  std::vector<float> cur(static_cast<size_t>(n_tok * rows));
  std::vector<float> m0(static_cast<size_t>(rows));
  std::vector<float> min_err(static_cast<size_t>(rows));
  std::vector<float> err_sum(static_cast<size_t>(rows));
  const float inv_tok = 1.0f / static_cast<float>(n_tok);
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t o = 0; o < rows; ++o) {
      const float* src = w.ptr() + o * cols + g * group;
      std::copy_n(src, group, w_group.data() + o * group);
      float amax = 0.0f;
      for (int64_t j = 0; j < group; ++j) amax = std::max(amax, std::fabs(src[j]));
      m0[static_cast<size_t>(o)] = amax;
      result.max_val.data[static_cast<size_t>(o * groups + g)] = amax;
      // AutoAWQ initialises min_err with 1e9 in md (+inf in float16).
      min_err[static_cast<size_t>(o)] = FastRoundTo(md, 1e9f);
    }
    // Partial dot products of the group, [n_tok, rows], stored in md as AutoAWQ's are.
    MatMulStrided(sampled_x.ptr() + g * group, cols, w_group.data(), ref.data(), n_tok, rows,
                  group);
    ParallelFor(n_tok, RowGrain(rows), [&](int64_t begin, int64_t end) {
      for (float* v = ref.data() + begin * rows; v != ref.data() + end * rows; ++v) {
        *v = FastRoundTo(md, *v);
      }
    });
    for (int i = 0; i < kClipShrinkSteps; ++i) {
      const float shrink = static_cast<float>(1.0 - static_cast<double>(i) / 20.0);
      ParallelFor(rows, RowGrain(group), [&](int64_t begin, int64_t end) {
        for (int64_t o = begin; o < end; ++o) {
          const float m = FastRoundTo(md, m0[static_cast<size_t>(o)] * shrink);
          float* t = trial.data() + o * group;
          const float* src = w_group.data() + o * group;
          for (int64_t j = 0; j < group; ++j) t[j] = std::clamp(src[j], -m, m);
          PseudoQuantizeGroup(t, group, md, scheme.zero_point, nullptr, nullptr, nullptr);
        }
      });
      MatMulStrided(sampled_x.ptr() + g * group, cols, trial.data(), cur.data(), n_tok, rows,
                    group);
      // err = mean over tokens of (cur − ref)², each step rounded to md like AutoAWQ's tensors;
      // each row's sum runs over the tokens in order, whatever the threads.
      ParallelFor(rows, RowGrain(n_tok), [&](int64_t begin, int64_t end) {
        for (int64_t o = begin; o < end; ++o) err_sum[static_cast<size_t>(o)] = 0.0f;
        for (int64_t t = 0; t < n_tok; ++t) {
          const float* c = cur.data() + t * rows;
          const float* r = ref.data() + t * rows;
          for (int64_t o = begin; o < end; ++o) {
            const float d = FastRoundTo(md, FastRoundTo(md, c[o]) - r[o]);
            err_sum[static_cast<size_t>(o)] += FastRoundTo(md, d * d);
          }
        }
        for (int64_t o = begin; o < end; ++o) {
          const float err = FastRoundTo(md, err_sum[static_cast<size_t>(o)] * inv_tok);
          if (err < min_err[static_cast<size_t>(o)]) {  // strict: ties keep the larger bound
            min_err[static_cast<size_t>(o)] = err;
            result.max_val.data[static_cast<size_t>(o * groups + g)] =
                FastRoundTo(md, m0[static_cast<size_t>(o)] * shrink);
            result.shrink_index[static_cast<size_t>(o * groups + g)] = static_cast<uint8_t>(i);
          }
        }
      });
    }
  }
  return result;
}

void ApplyClip(const Tensor& max_val, int64_t group, Tensor* w) {
  const int64_t rows = w->dim(0);
  const int64_t cols = w->dim(1);
  const int64_t groups = cols / group;
  for (int64_t o = 0; o < rows; ++o) {
    float* row = w->ptr() + o * cols;
    for (int64_t j = 0; j < cols; ++j) {
      const float m = max_val.data[static_cast<size_t>(o * groups + j / group)];
      row[j] = std::clamp(row[j], -m, m);
    }
  }
}

}  // namespace quantd::engine
