#include "backend/cpu/layer_ops.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/fast_round.h"
#include "core/matmul.h"

namespace quantd::engine {
namespace {

void RmsNormRow(const float* x, const float* w, int64_t c, float eps, DType md, NormKind kind,
                float* y) {
  float sum = 0.0f;
  for (int64_t j = 0; j < c; ++j) sum += x[j] * x[j];
  const float inv = 1.0f / std::sqrt(sum / static_cast<float>(c) + eps);
  if (kind == NormKind::kRmsOnePlusWeight) {
    for (int64_t j = 0; j < c; ++j) y[j] = FastRoundTo(md, (x[j] * inv) * (1.0f + w[j]));
    return;
  }
  for (int64_t j = 0; j < c; ++j) y[j] = FastRoundTo(md, w[j] * FastRoundTo(md, x[j] * inv));
}

// transformers' _compute_*_parameters: inverse frequencies in float32.
std::vector<float> InverseFrequencies(const LayerAttention& attention, int64_t head_dim) {
  std::vector<float> inv(static_cast<size_t>(head_dim / 2));
  for (int64_t i = 0; i < head_dim / 2; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(head_dim);
    inv[static_cast<size_t>(i)] =
        1.0f / std::pow(static_cast<float>(attention.rope_theta), exponent);
  }
  const RopeScaling& rs = attention.rope_scaling;
  if (rs.type == RopeScaling::Type::kLinear) {
    for (float& f : inv) f /= static_cast<float>(rs.factor);
  } else if (rs.type == RopeScaling::Type::kLlama3) {
    const double old_len = rs.original_max_position_embeddings;
    const double low_wavelen = old_len / rs.low_freq_factor;
    const double high_wavelen = old_len / rs.high_freq_factor;
    for (float& f : inv) {
      const double wavelen = 2.0 * std::numbers::pi / f;
      if (wavelen > low_wavelen) {
        f = static_cast<float>(f / rs.factor);
      } else if (wavelen >= high_wavelen) {
        const double smooth =
            (old_len / wavelen - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor);
        f = static_cast<float>((1.0 - smooth) * f / rs.factor + smooth * f);
      }
    }
  }
  return inv;
}

}  // namespace

void RoundAll(DType md, Tensor* t) {
  if (md == DType::kF32) return;
  for (float& v : t->data) v = FastRoundTo(md, v);
}

Tensor RmsNorm(const Tensor& x, const Tensor& weight, float eps, DType md, NormKind kind) {
  const int64_t n = x.dim(0);
  const int64_t c = x.dim(1);
  Tensor y({n, c});
  for (int64_t i = 0; i < n; ++i)
    RmsNormRow(x.ptr() + i * c, weight.ptr(), c, eps, md, kind, y.ptr() + i * c);
  return y;
}

void HeadRmsNorm(const Tensor& weight, float eps, DType md, NormKind kind, Tensor* x) {
  const int64_t d = weight.numel();
  std::vector<float> tmp(static_cast<size_t>(d));
  for (int64_t off = 0; off < x->numel(); off += d) {
    RmsNormRow(x->ptr() + off, weight.ptr(), d, eps, md, kind, tmp.data());
    std::copy(tmp.begin(), tmp.end(), x->ptr() + off);
  }
}

Tensor Linear(const Tensor& x, const LinearWeights& linear, DType md) {
  const int64_t n = x.dim(0);
  const int64_t out = linear.out_features();
  Tensor y({n, out});
  MatMulTransB(x.ptr(), linear.weight.ptr(), y.ptr(), n, out, linear.in_features());
  if (linear.bias.has_value()) {
    const float* b = linear.bias->ptr();
    for (int64_t i = 0; i < n; ++i) {
      float* row = y.ptr() + i * out;
      for (int64_t j = 0; j < out; ++j) row[j] += b[j];
    }
  }
  RoundAll(md, &y);
  return y;
}

RopeTable MakeRopeTable(const ModelConfig& config, int64_t len, DType md) {
  return MakeRopeTable(config, LayerAttention{0, config.rope_theta, config.rope_scaling}, len, md);
}

RopeTable MakeRopeTable(const ModelConfig& config, const LayerAttention& attention, int64_t len,
                        DType md) {
  const int64_t d = config.head_dim;
  RopeTable t;
  t.len = len;
  t.head_dim = d;
  t.cos.resize(static_cast<size_t>(len * d));
  t.sin.resize(static_cast<size_t>(len * d));
  const std::vector<float> inv = InverseFrequencies(attention, d);
  for (int64_t p = 0; p < len; ++p) {
    for (int64_t i = 0; i < d; ++i) {
      const float angle = static_cast<float>(p) * inv[static_cast<size_t>(i % (d / 2))];
      t.cos[static_cast<size_t>(p * d + i)] = FastRoundTo(md, std::cos(angle));
      t.sin[static_cast<size_t>(p * d + i)] = FastRoundTo(md, std::sin(angle));
    }
  }
  return t;
}

void ApplyRope(const RopeTable& rope, int64_t heads, DType md, Tensor* x) {
  const int64_t d = rope.head_dim;
  const int64_t half = d / 2;
  const int64_t tokens = x->dim(0);
  std::vector<float> rotated(static_cast<size_t>(d));
  for (int64_t t = 0; t < tokens; ++t) {
    const int64_t pos = t % rope.len;
    const float* c = rope.cos.data() + pos * d;
    const float* s = rope.sin.data() + pos * d;
    for (int64_t h = 0; h < heads; ++h) {
      float* v = x->ptr() + (t * heads + h) * d;
      for (int64_t i = 0; i < half; ++i) {
        rotated[static_cast<size_t>(i)] = -v[i + half];
        rotated[static_cast<size_t>(i + half)] = v[i];
      }
      for (int64_t i = 0; i < d; ++i) {
        v[i] = FastRoundTo(md, FastRoundTo(md, v[i] * c[i]) +
                                   FastRoundTo(md, rotated[static_cast<size_t>(i)] * s[i]));
      }
    }
  }
}

AttentionScores AttentionScoresOf(const ModelConfig& config, int layer) {
  const double scalar =
      config.query_pre_attn_scalar > 0 ? config.query_pre_attn_scalar : config.head_dim;
  return {1.0f / std::sqrt(static_cast<float>(scalar)),
          static_cast<float>(config.attn_logit_softcapping),
          config.attention(layer).sliding_window};
}

Tensor CausalAttention(const Tensor& q, const Tensor& k, const Tensor& v, int64_t len,
                       int64_t heads, int64_t kv_heads, int64_t head_dim, DType md,
                       const AttentionScores& opt) {
  const int64_t tokens = q.dim(0);
  const int64_t blocks = tokens / len;
  const int64_t q_stride = heads * head_dim;
  const int64_t kv_stride = kv_heads * head_dim;
  const int64_t group = heads / kv_heads;
  Tensor out({tokens, q_stride});
  std::vector<float> scores(static_cast<size_t>(std::min<int64_t>(len, 64) * len));
  const int l = static_cast<int>(len);
  const int hd = static_cast<int>(head_dim);
  // Queries in row tiles: a tile attends to keys first..(its last row), so the masked upper
  // triangle (and, with a window, the keys before every row's window) is mostly never computed.
  constexpr int64_t kTile = 64;
  for (int64_t b = 0; b < blocks; ++b) {
    for (int64_t h = 0; h < heads; ++h) {
      const float* kb = k.ptr() + b * len * kv_stride + (h / group) * head_dim;
      const float* vb = v.ptr() + b * len * kv_stride + (h / group) * head_dim;
      for (int64_t i0 = 0; i0 < len; i0 += kTile) {
        const int64_t rows = std::min(kTile, len - i0);
        const int64_t first = opt.window > 0 ? std::max<int64_t>(0, i0 - opt.window + 1) : 0;
        const int64_t keys = i0 + rows - first;
        const float* qb = q.ptr() + (b * len + i0) * q_stride + h * head_dim;
        float* ob = out.ptr() + (b * len + i0) * q_stride + h * head_dim;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows),
                    static_cast<int>(keys), hd, opt.scale, qb, static_cast<int>(q_stride),
                    kb + first * kv_stride, static_cast<int>(kv_stride), 0.0f, scores.data(), l);
        for (int64_t r = 0; r < rows; ++r) {
          float* row = scores.data() + r * len;
          const int64_t last = i0 + r - first;  // causal: keys first..i0 + r
          const int64_t lo =
              opt.window > 0 ? std::max<int64_t>(0, i0 + r - opt.window + 1 - first) : 0;
          if (opt.softcap > 0) {
            for (int64_t j = lo; j <= last; ++j) {
              row[j] = opt.softcap * std::tanh(row[j] / opt.softcap);
            }
          }
          float mx = row[lo];
          for (int64_t j = lo + 1; j <= last; ++j) mx = std::max(mx, row[j]);
          float sum = 0.0f;
          for (int64_t j = lo; j <= last; ++j) {
            row[j] = std::exp(row[j] - mx);
            sum += row[j];
          }
          const float inv = 1.0f / sum;
          for (int64_t j = 0; j < lo; ++j) row[j] = 0.0f;
          for (int64_t j = lo; j <= last; ++j) row[j] *= inv;
          for (int64_t j = last + 1; j < keys; ++j) row[j] = 0.0f;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(rows), hd,
                    static_cast<int>(keys), 1.0f, scores.data(), l, vb + first * kv_stride,
                    static_cast<int>(kv_stride), 0.0f, ob, static_cast<int>(q_stride));
      }
    }
  }
  RoundAll(md, &out);
  return out;
}

Tensor GatedActivation(const Tensor& gate, const Tensor& up, Activation act, DType md) {
  Tensor y(gate.shape);
  // PyTorch's gelu(approximate="tanh"): 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³))).
  // kBeta as PyTorch forms it: M_SQRT2 · M_2_SQRTPI · 0.5 in double, then float.
  constexpr float kBeta =
      static_cast<float>(std::numbers::sqrt2 * (2.0 * std::numbers::inv_sqrtpi) * 0.5);
  constexpr float kKappa = 0.044715f;
  for (int64_t i = 0; i < gate.numel(); ++i) {
    const float g = gate.data[i];
    float a;
    if (act == Activation::kGeluTanh) {
      const float inner = kBeta * (g + kKappa * (g * g * g));
      a = 0.5f * g * (1.0f + std::tanh(inner));
    } else {
      a = g / (1.0f + std::exp(-g));
    }
    y.data[i] = FastRoundTo(md, FastRoundTo(md, a) * up.data[i]);
  }
  return y;
}

void SoftCap(float c, DType md, Tensor* x) {
  for (float& v : x->data) {
    v = FastRoundTo(md, FastRoundTo(md, std::tanh(FastRoundTo(md, v / c))) * c);
  }
}

void AddInPlace(const Tensor& b, DType md, Tensor* a) {
  for (int64_t i = 0; i < a->numel(); ++i) a->data[i] = FastRoundTo(md, a->data[i] + b.data[i]);
}

}  // namespace quantd::engine
