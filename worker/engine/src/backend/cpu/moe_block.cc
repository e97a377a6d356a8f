#include "backend/cpu/moe_block.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "backend/cpu/layer_ops.h"
#include "core/fast_round.h"

namespace quantd::engine {

namespace {

// Softmax of one row of logits in float32 into p, and the experts in top-k order first in order
// (probability descending, ties to the lower index, as a stable sort).
void SoftmaxTopK(const float* z, int experts, int k, std::vector<float>* p,
                 std::vector<int32_t>* order) {
  p->resize(static_cast<size_t>(experts));
  order->resize(static_cast<size_t>(experts));
  float mx = -INFINITY;
  for (int e = 0; e < experts; ++e) mx = std::max(mx, z[e]);
  float sum = 0.0f;
  for (int e = 0; e < experts; ++e) {
    (*p)[static_cast<size_t>(e)] = std::exp(z[e] - mx);
    sum += (*p)[static_cast<size_t>(e)];
  }
  for (float& v : *p) v /= sum;
  std::iota(order->begin(), order->end(), 0);
  std::partial_sort(order->begin(), order->begin() + k, order->end(), [&](int32_t a, int32_t b) {
    const float pa = (*p)[static_cast<size_t>(a)], pb = (*p)[static_cast<size_t>(b)];
    return pa > pb || (pa == pb && a < b);
  });
}

}  // namespace

std::vector<int32_t> TopExperts(const float* logits, int experts, int k) {
  std::vector<float> p;
  std::vector<int32_t> order;
  SoftmaxTopK(logits, experts, k, &p, &order);
  order.resize(static_cast<size_t>(k));
  return order;
}

Routing RouteTokens(const MoeConfig& moe, const Tensor& logits, DType md) {
  const int64_t n = logits.dim(0);
  const int experts = static_cast<int>(logits.dim(1));
  const int k = moe.experts_per_token;
  Routing r;
  r.tokens = n;
  r.k = k;
  r.expert.resize(static_cast<size_t>(n * k));
  r.weight.resize(static_cast<size_t>(n * k));
  r.tokens_of.assign(static_cast<size_t>(experts), {});
  r.weight_of.assign(static_cast<size_t>(experts), {});
  std::vector<float> p;
  std::vector<int32_t> order;
  for (int64_t t = 0; t < n; ++t) {
    SoftmaxTopK(logits.ptr() + t * experts, experts, k, &p, &order);
    float top_sum = 0.0f;
    for (int j = 0; j < k; ++j) top_sum += p[static_cast<size_t>(order[static_cast<size_t>(j)])];
    for (int j = 0; j < k; ++j) {
      const int32_t e = order[static_cast<size_t>(j)];
      float w = p[static_cast<size_t>(e)];
      if (moe.norm_topk_prob) w /= top_sum;
      r.expert[static_cast<size_t>(t * k + j)] = e;
      r.weight[static_cast<size_t>(t * k + j)] = FastRoundTo(md, w);
    }
  }
  // Each expert's tokens in the order transformers gathers them (torch.where over the one-hot
  // [k, tokens] mask: tokens that chose it first, then second, ...). AutoAWQ's input cache of an
  // expert Linear holds them in this order, and the clip search samples every step-th of them.
  for (int j = 0; j < k; ++j) {
    for (int64_t t = 0; t < n; ++t) {
      const size_t at = static_cast<size_t>(t * k + j);
      r.tokens_of[static_cast<size_t>(r.expert[at])].push_back(t);
      r.weight_of[static_cast<size_t>(r.expert[at])].push_back(r.weight[at]);
    }
  }
  return r;
}

MoeView ViewOf(const MoeWeights& w) {
  MoeView v;
  for (const ExpertWeights& e : w.experts)
    v.experts.push_back({&e.gate_proj, &e.up_proj, &e.down_proj});
  if (w.shared_expert.has_value()) {
    v.shared_expert = ExpertView{&w.shared_expert->gate_proj, &w.shared_expert->up_proj,
                                 &w.shared_expert->down_proj};
  }
  if (w.shared_expert_gate.has_value()) v.shared_expert_gate = &*w.shared_expert_gate;
  return v;
}

Tensor GatherTokenRows(const Tensor& x, const std::vector<int64_t>& rows) {
  const int64_t c = x.dim(1);
  Tensor out({static_cast<int64_t>(rows.size()), c});
  for (size_t i = 0; i < rows.size(); ++i) {
    std::copy_n(x.ptr() + rows[i] * c, c, out.ptr() + static_cast<int64_t>(i) * c);
  }
  return out;
}

Tensor MoeBlockForward(const MoeView& w, const Routing& routing, const Tensor& x, DType md,
                       MoeCapture* capture) {
  const int64_t n = x.dim(0), h = x.dim(1);
  Tensor y({n, h});  // index_add_ target: zeros in md
  if (capture != nullptr) {
    capture->down_input.assign(w.experts.size(), Tensor());
    capture->routed_input.assign(w.experts.size(), Tensor());
  }
  for (size_t e = 0; e < w.experts.size(); ++e) {
    const std::vector<int64_t>& rows = routing.tokens_of[e];
    if (rows.empty()) continue;
    Tensor xe = GatherTokenRows(x, rows);
    Tensor act = GatedActivation(Linear(xe, *w.experts[e].gate, md),
                                 Linear(xe, *w.experts[e].up, md), Activation::kSilu, md);
    const Tensor out = Linear(act, *w.experts[e].down, md);
    const std::vector<float>& wt = routing.weight_of[e];
    for (size_t i = 0; i < rows.size(); ++i) {
      const float* o = out.ptr() + static_cast<int64_t>(i) * h;
      float* dst = y.ptr() + rows[i] * h;
      for (int64_t j = 0; j < h; ++j)
        dst[j] = FastRoundTo(md, dst[j] + FastRoundTo(md, o[j] * wt[i]));
    }
    if (capture != nullptr) {
      capture->down_input[e] = std::move(act);
      capture->routed_input[e] = std::move(xe);
    }
  }
  if (w.shared_expert.has_value()) {
    const ExpertView& s = *w.shared_expert;
    Tensor act =
        GatedActivation(Linear(x, *s.gate, md), Linear(x, *s.up, md), Activation::kSilu, md);
    const Tensor out = Linear(act, *s.down, md);
    const Tensor gate = Linear(x, *w.shared_expert_gate, md);  // [n, 1]
    for (int64_t t = 0; t < n; ++t) {
      const float g = gate.data[static_cast<size_t>(t)];
      const float sig = FastRoundTo(md, 1.0f / (1.0f + std::exp(-g)));
      for (int64_t j = 0; j < h; ++j) {
        float& dst = y.data[static_cast<size_t>(t * h + j)];
        dst =
            FastRoundTo(md, dst + FastRoundTo(md, sig * out.data[static_cast<size_t>(t * h + j)]));
      }
    }
    if (capture != nullptr) capture->shared_down_input = std::move(act);
  }
  return y;
}

Routing RouteBlock(const MoeConfig& moe, const MoeWeights& w, const Tensor& x, DType md) {
  return RouteTokens(moe, Linear(x, w.router, md), md);
}

}  // namespace quantd::engine
