#include "cuda/device_layer.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>

#include "absl/strings/str_cat.h"
#include "backend/cpu/layer_ops.h"
#include "cuda/kernels.h"
#include "cuda/moe_block.h"
#include "io/status_macros.h"
#include "model/moe_layout.h"

namespace quantd::engine::cuda {
namespace {

// Bound of each [tokens, intermediate] scratch buffer of the 16-bit MLP (token chunks).
constexpr int64_t kMlpChunkBytes = int64_t{512} << 20;

// Token rows per chunk of the 16-bit MLP: as large as kMlpChunkBytes allows. Chunks small enough
// for gate/up/act to stay in L2 between the GEMMs and GatedMulOperand (1024–16384 tokens at the
// 0.5B geometry) measured slower on the H100: the GEMMs lose more than SiLU·up saves.
int64_t MlpChunkRows(int64_t n, int64_t im, int64_t e) {
  return std::min(n, std::max<int64_t>(128, kMlpChunkBytes / (im * e) / 128 * 128));
}

absl::Status UploadTensor(const Tensor& t, DeviceBuffer* buf, cudaStream_t stream) {
  if (absl::Status s = buf->Reserve(t.data.size() * sizeof(float)); !s.ok()) return s;
  QUANTD_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(buf->f32(), t.ptr(), t.data.size() * sizeof(float),
                                              cudaMemcpyHostToDevice, stream));
  return absl::OkStatus();
}

absl::Status UploadLinear(const LinearWeights& w, DType md, cudaStream_t stream,
                          SourceStaging* staging, DeviceLinear* l) {
  l->out = w.out_features();
  l->in = w.in_features();
  if (w.source.has_value()) {  // still in the checkpoint: streamed from it
    QUANTD_RETURN_IF_ERROR(l->weight.Reserve(static_cast<size_t>(l->out * l->in) * sizeof(float)));
    QUANTD_RETURN_IF_ERROR(staging->Upload(*w.source, l->weight.f32(), stream));
  } else if (absl::Status s = UploadTensor(w.weight, &l->weight, stream); !s.ok()) {
    return s;
  }
  l->has_bias = w.bias.has_value();
  if (l->has_bias) {
    if (absl::Status s = UploadTensor(*w.bias, &l->bias, stream); !s.ok()) return s;
  }
  if (md != DType::kF32) {
    if (absl::Status s = Ensure(&l->operand, l->out * l->in, DTypeSize(md)); !s.ok()) return s;
    if (l->has_bias) {
      if (absl::Status s = Ensure(&l->bias_op, l->out, DTypeSize(md)); !s.ok()) return s;
    }
    RefreshOperand(l, md, stream);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckCudaSupports(const ModelConfig& c) {
  if (!AttentionSupportsHeadDim(c.head_dim)) {
    return absl::UnimplementedError(absl::StrCat(
        "the CUDA backend supports head_dim 64, 96, 128 and 256; this model has ", c.head_dim));
  }
  return absl::OkStatus();
}

AttentionOptions AttentionOptionsOf(const ModelConfig& c, int layer) {
  const double scalar = c.query_pre_attn_scalar > 0 ? c.query_pre_attn_scalar : c.head_dim;
  AttentionOptions o;
  o.scale = 1.0f / std::sqrt(static_cast<float>(scalar));
  o.scale_log2 = static_cast<float>(1.4426950408889634 / std::sqrt(scalar));
  o.softcap = static_cast<float>(c.attn_logit_softcapping);
  o.window = c.attention(layer).sliding_window;
  return o;
}

absl::Status Ensure(DeviceBuffer* buf, int64_t n, size_t elem) {
  return buf->Reserve(static_cast<size_t>(n) * elem);
}

void RefreshOperand(DeviceLinear* l, DType md, cudaStream_t stream) {
  if (md == DType::kF32) return;
  ToOperand(l->weight.f32(), l->operand.as<void>(), l->out * l->in, md, stream);
  if (l->has_bias) ToOperand(l->bias.f32(), l->bias_op.as<void>(), l->out, md, stream);
}

DeviceLinear* DeviceLayer::linear(std::string_view name) {
  const std::pair<const char*, DeviceLinear*> all[] = {
      {kQProj, &q},       {kKProj, &k},   {kVProj, &v},      {kOProj, &o},
      {kGateProj, &gate}, {kUpProj, &up}, {kDownProj, &down}};
  for (const auto& [n, l] : all) {
    if (name == n) return l;
  }
  if (!sparse || !IsMoeTensorName(name)) return nullptr;
  if (name.size() > 5 && name.substr(name.size() - 5) == ".gate") return &moe.router;
  if (name == kSharedExpertGateName) {
    return moe.has_shared_expert ? &moe.shared_expert_gate : nullptr;
  }
  DeviceExpert* e = nullptr;
  if (std::optional<int> i = ExpertOfLinear(name)) {
    if (static_cast<size_t>(*i) >= moe.experts.size()) return nullptr;
    e = &moe.experts[static_cast<size_t>(*i)];
  } else if (moe.has_shared_expert) {
    e = &moe.shared_expert;
  } else {
    return nullptr;
  }
  if (IsExpertDownProjection(name)) return &e->down;
  const std::string_view last = name.substr(name.rfind('.') + 1);
  return last == "gate_proj" || last == "w1" ? &e->gate : &e->up;
}

DeviceBuffer* DeviceLayer::norm(std::string_view name) {
  const std::pair<const char*, DeviceBuffer*> all[] = {{kInputNorm, &input_norm},
                                                       {kPostAttentionNorm, &post_norm},
                                                       {kPreFeedforwardNorm, &pre_ff_norm},
                                                       {kPostFeedforwardNorm, &post_ff_norm},
                                                       {kQNorm, &q_norm},
                                                       {kKNorm, &k_norm}};
  for (const auto& [n, b] : all) {
    if (name == n) return b;
  }
  // The sparse block's float Linears are float tensors of the layer too.
  DeviceLinear* l = linear(name);
  if (l != nullptr && (l == &moe.router || l == &moe.shared_expert_gate)) return &l->weight;
  return nullptr;
}

namespace {

// A sparse block's Linears; the device keeps the expert slots of earlier layers (same shapes).
absl::Status UploadMoe(const MoeWeights& w, DType md, cudaStream_t stream, SourceStaging* staging,
                       DeviceMoe* out) {
  auto expert = [&](const ExpertWeights& e, DeviceExpert* d) -> absl::Status {
    QUANTD_RETURN_IF_ERROR(UploadLinear(e.gate_proj, md, stream, staging, &d->gate));
    QUANTD_RETURN_IF_ERROR(UploadLinear(e.up_proj, md, stream, staging, &d->up));
    return UploadLinear(e.down_proj, md, stream, staging, &d->down);
  };
  QUANTD_RETURN_IF_ERROR(UploadLinear(w.router, md, stream, staging, &out->router));
  if (out->experts.size() != w.experts.size()) out->experts.resize(w.experts.size());
  for (size_t e = 0; e < w.experts.size(); ++e) {
    QUANTD_RETURN_IF_ERROR(expert(w.experts[e], &out->experts[e]));
  }
  out->has_shared_expert = w.shared_expert.has_value() && w.shared_expert_gate.has_value();
  if (out->has_shared_expert) {
    QUANTD_RETURN_IF_ERROR(expert(*w.shared_expert, &out->shared_expert));
    QUANTD_RETURN_IF_ERROR(
        UploadLinear(*w.shared_expert_gate, md, stream, staging, &out->shared_expert_gate));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status UploadLayer(const LayerWeights& w, DType md, cudaStream_t stream, DeviceLayer* out,
                         SourceStaging* staging) {
  std::optional<SourceStaging> own;  // for this call only (a replayed layer's forward)
  if (staging == nullptr) staging = &own.emplace();
  out->sparse = w.moe.has_value();
  for (const char* name : {kQProj, kKProj, kVProj, kOProj, kGateProj, kUpProj, kDownProj}) {
    if (out->sparse && out->linear(name) == &out->gate) break;  // gate/up/down: dense only
    QUANTD_RETURN_IF_ERROR(
        UploadLinear(*FindLinear(w, name), md, stream, staging, out->linear(name)));
  }
  if (out->sparse) QUANTD_RETURN_IF_ERROR(UploadMoe(*w.moe, md, stream, staging, &out->moe));
  out->has_qk_norm = w.q_norm.has_value() && w.k_norm.has_value();
  out->has_ff_norms =
      w.pre_feedforward_layernorm.has_value() && w.post_feedforward_layernorm.has_value();
  for (const char* name : {kInputNorm, kPostAttentionNorm, kPreFeedforwardNorm,
                           kPostFeedforwardNorm, kQNorm, kKNorm}) {
    if (const Tensor* t = FindFloatTensor(w, name)) {
      QUANTD_RETURN_IF_ERROR(UploadTensor(*t, out->norm(name), stream));
    }
  }
  return absl::OkStatus();
}

AttentionWeights AttentionOf(const DeviceLayer& l, DType md) {
  return {l.q.op(md),
          l.k.op(md),
          l.v.op(md),
          l.o.op(md),
          l.q.bias_ptr(),
          l.k.bias_ptr(),
          l.v.bias_ptr(),
          l.o.bias_ptr(),
          l.q.bias_op_ptr(),
          l.k.bias_op_ptr(),
          l.v.bias_op_ptr(),
          l.o.bias_op_ptr(),
          l.has_qk_norm ? l.q_norm.f32() : nullptr,
          l.has_qk_norm ? l.k_norm.f32() : nullptr};
}

MlpWeights MlpOf(const DeviceLayer& l, DType md) {
  return {l.gate.op(md),     l.up.op(md),     l.down.op(md),
          l.gate.bias_ptr(), l.up.bias_ptr(), l.down.bias_ptr()};
}

absl::Status SelfAttentionForward(Gemm& gemm, const LayerGeometry& g, const AttentionWeights& w,
                                  const void* x_op, void* out, DType out_type, float* o_input,
                                  ForwardScratch* s, cudaStream_t stream) {
  const ModelConfig& c = *g.config;
  const int64_t n = g.tokens;
  const int64_t d = c.head_dim;
  const int64_t qd = c.num_attention_heads * d;
  const int64_t kvd = c.num_key_value_heads * d;
  const float eps = static_cast<float>(c.rms_norm_eps);
  // 16-bit md: the attention reads q/k/v in md and writes o_proj's md operand itself; a float32
  // output only where one is wanted (the captured o_proj input). Without q/k norms the q/k/v GEMMs
  // write md straight from cuBLAS(Lt) with the bias added in the epilogue and RoPE runs in place
  // on md; with them (Qwen3) q/k/v pass through float32 for the norms. Float32 md: everything in
  // float32.
  const bool f32 = g.md == DType::kF32;
  const bool fused = !f32 && w.q_norm == nullptr && w.k_norm == nullptr;
  if (out_type != DType::kF32 && (f32 || out_type != g.md)) {
    return absl::InternalError("SelfAttentionForward: an md output needs a 16-bit model dtype");
  }
  if (!fused) {
    for (auto [buf, cols] : {std::pair{&s->q, qd}, {&s->k, kvd}, {&s->v, kvd}}) {
      if (absl::Status st = Ensure(buf, n * cols, sizeof(float)); !st.ok()) return st;
    }
  }
  float* attn = o_input;
  if (attn == nullptr && f32) {
    QUANTD_RETURN_IF_ERROR(Ensure(&s->attn, n * qd, sizeof(float)));
    attn = s->attn.f32();
  }
  if (!f32) {
    const size_t e = DTypeSize(g.md);
    QUANTD_RETURN_IF_ERROR(Ensure(&s->attn_op, n * qd, e));
    QUANTD_RETURN_IF_ERROR(Ensure(&s->q_op, n * qd, e));
    QUANTD_RETURN_IF_ERROR(Ensure(&s->k_op, n * kvd, e));
    QUANTD_RETURN_IF_ERROR(Ensure(&s->v_op, n * kvd, e));
  }
  void* attn_op = f32 ? nullptr : s->attn_op.as<void>();
  void* q_op = f32 ? nullptr : s->q_op.as<void>();
  void* k_op = f32 ? nullptr : s->k_op.as<void>();
  const int64_t h = c.hidden_size;
  if (fused) {
    QUANTD_RETURN_IF_ERROR(gemm.LinearBias(x_op, w.q, w.q_bias_op, q_op, n, qd, h, g.md));
    QUANTD_RETURN_IF_ERROR(gemm.LinearBias(x_op, w.k, w.k_bias_op, k_op, n, kvd, h, g.md));
    QUANTD_RETURN_IF_ERROR(
        gemm.LinearBias(x_op, w.v, w.v_bias_op, s->v_op.as<void>(), n, kvd, h, g.md));
    RopeQkOperand(q_op, k_op, g.rope_cos, g.rope_sin, n, c.num_attention_heads,
                  c.num_key_value_heads, d, g.len, g.md, stream);
  } else {
    QUANTD_RETURN_IF_ERROR(gemm.Linear(x_op, w.q, s->q.f32(), n, qd, h, g.md));
    QUANTD_RETURN_IF_ERROR(gemm.Linear(x_op, w.k, s->k.f32(), n, kvd, h, g.md));
    QUANTD_RETURN_IF_ERROR(gemm.Linear(x_op, w.v, s->v.f32(), n, kvd, h, g.md));
    BiasRound(s->q.f32(), w.q_bias, n, qd, g.md, stream);
    BiasRound(s->k.f32(), w.k_bias, n, kvd, g.md, stream);
    if (f32) {
      BiasRound(s->v.f32(), w.v_bias, n, kvd, g.md, stream);
    } else {
      BiasRoundOperand(s->v.f32(), w.v_bias, n, kvd, g.md, s->v_op.as<void>(), stream);
    }
    const bool one_plus = c.norm == NormKind::kRmsOnePlusWeight;
    if (w.q_norm != nullptr) {
      RmsNorm(s->q.f32(), w.q_norm, s->q.f32(), n * c.num_attention_heads, d, eps, g.md, one_plus,
              stream);
    }
    if (w.k_norm != nullptr) {
      RmsNorm(s->k.f32(), w.k_norm, s->k.f32(), n * c.num_key_value_heads, d, eps, g.md, one_plus,
              stream);
    }
    Rope(s->q.f32(), g.rope_cos, g.rope_sin, n, c.num_attention_heads, d, g.len, g.md, q_op,
         stream);
    Rope(s->k.f32(), g.rope_cos, g.rope_sin, n, c.num_key_value_heads, d, g.len, g.md, k_op,
         stream);
  }
  const void* q_in = f32 ? s->q.as<void>() : q_op;
  const void* k_in = f32 ? s->k.as<void>() : k_op;
  const void* v_in = f32 ? s->v.as<void>() : s->v_op.as<void>();
  if (!CausalAttention(q_in, k_in, v_in, attn, attn_op, n, g.len, c.num_attention_heads,
                       c.num_key_value_heads, d, g.md, g.attention, stream)) {
    return absl::UnimplementedError(absl::StrCat(
        "the CUDA backend's attention supports head_dim 64, 96, 128 and 256, not ", d));
  }
  if (out_type != DType::kF32) {
    QUANTD_RETURN_IF_ERROR(gemm.LinearBias(attn_op, w.o, w.o_bias_op, out, n, h, qd, g.md));
  } else {
    float* out_f32 = static_cast<float*>(out);
    QUANTD_RETURN_IF_ERROR(gemm.Linear(f32 ? attn : attn_op, w.o, out_f32, n, h, qd, g.md));
    BiasRound(out_f32, w.o_bias, n, h, g.md, stream);
  }
  QUANTD_CUDA_RETURN_IF_LAUNCH_FAILED("SelfAttentionForward");
  return absl::OkStatus();
}

bool MlpUsesOperandPath(const MlpWeights& w, DType md) {
  return md != DType::kF32 && w.gate_bias == nullptr && w.up_bias == nullptr;
}

absl::Status MlpForward(Gemm& gemm, const LayerGeometry& g, const MlpWeights& w, const void* x_op,
                        void* out, DType out_type, void* down_input, ForwardScratch* s,
                        cudaStream_t stream) {
  const ModelConfig& c = *g.config;
  const int64_t n = g.tokens;
  const int64_t h = c.hidden_size;
  const int64_t im = w.intermediate > 0 ? w.intermediate : c.intermediate_size;
  const int64_t e = DTypeSize(g.md);
  const bool operand_path = MlpUsesOperandPath(w, g.md);
  if (out_type != DType::kF32 && (!operand_path || out_type != g.md || w.down_bias != nullptr)) {
    return absl::InternalError("MlpForward: an md output needs the bias-free 16-bit path");
  }
  if (operand_path) {
    // Bias-free 16-bit MLP: gate and up come out of the GEMMs already rounded to md, and one
    // kernel makes the down_proj operand (no float32 intermediates). Token chunks bound the
    // [tokens, intermediate] scratch to kMlpChunkBytes per buffer; the captured down_proj input
    // (when wanted) is written whole.
    const int64_t rows = MlpChunkRows(n, im, e);
    // gate and up of a chunk side by side in one buffer, in the order of their weights' addresses,
    // so that one strided-batched GEMM (Gemm::LinearPair) makes both; the second starts 256-byte
    // aligned for GatedMulOperand's vector loads.
    const auto second = [&](int64_t m) { return (m * im * e + 255) / 256 * 256; };
    QUANTD_RETURN_IF_ERROR(Ensure(&s->gate, second(rows) + rows * im * e, 1));
    if (down_input == nullptr) QUANTD_RETURN_IF_ERROR(Ensure(&s->act_op, rows * im, e));
    const bool gate_first = reinterpret_cast<uintptr_t>(w.gate) < reinterpret_cast<uintptr_t>(w.up);
    for (int64_t r0 = 0; r0 < n; r0 += rows) {
      const int64_t m = std::min(rows, n - r0);
      const void* x = static_cast<const char*>(x_op) + r0 * h * e;
      void* gate = s->gate.as<char>() + (gate_first ? 0 : second(m));
      void* up = s->gate.as<char>() + (gate_first ? second(m) : 0);
      QUANTD_RETURN_IF_ERROR(gemm.LinearPair(x, w.gate, w.up, gate, up, m, im, h, g.md, g.md));
      void* act = down_input != nullptr ? static_cast<char*>(down_input) + r0 * im * e
                                        : s->act_op.as<void>();
      GatedMulOperand(gate, up, act, m * im, c.activation == Activation::kGeluTanh, g.md, stream);
      QUANTD_RETURN_IF_ERROR(gemm.Linear(act, w.down,
                                         static_cast<char*>(out) + r0 * h * DTypeSize(out_type), m,
                                         h, im, g.md, out_type));
    }
    if (out_type == DType::kF32)
      BiasRound(static_cast<float*>(out), w.down_bias, n, h, g.md, stream);
    QUANTD_CUDA_RETURN_IF_LAUNCH_FAILED("MlpForward");
    return absl::OkStatus();
  }
  for (DeviceBuffer* buf : {&s->gate, &s->up, &s->act}) {
    QUANTD_RETURN_IF_ERROR(Ensure(buf, n * im, sizeof(float)));
  }
  if (g.md != DType::kF32) QUANTD_RETURN_IF_ERROR(Ensure(&s->act_op, n * im, e));
  if (absl::Status st = gemm.Linear(x_op, w.gate, s->gate.f32(), n, im, h, g.md); !st.ok())
    return st;
  if (absl::Status st = gemm.Linear(x_op, w.up, s->up.f32(), n, im, h, g.md); !st.ok()) return st;
  BiasRound(s->gate.f32(), w.gate_bias, n, im, g.md, stream);
  BiasRound(s->up.f32(), w.up_bias, n, im, g.md, stream);
  float* act = down_input != nullptr ? static_cast<float*>(down_input) : s->act.f32();
  GatedMul(s->gate.f32(), s->up.f32(), act, n * im, c.activation == Activation::kGeluTanh, g.md,
           stream);
  const void* act_op = act;
  if (g.md != DType::kF32) {
    ToOperand(act, s->act_op.as<void>(), n * im, g.md, stream);
    act_op = s->act_op.as<void>();
  }
  float* out_f32 = static_cast<float*>(out);
  if (absl::Status st = gemm.Linear(act_op, w.down, out_f32, n, h, im, g.md); !st.ok()) return st;
  BiasRound(out_f32, w.down_bias, n, h, g.md, stream);
  QUANTD_CUDA_RETURN_IF_LAUNCH_FAILED("MlpForward");
  return absl::OkStatus();
}

// hidden = md(hidden + out), or with Gemma's norms md(hidden + norm(out)).
void AddModuleOutput(const LayerGeometry& g, const DeviceBuffer* out_norm, const float* out,
                     float* hidden, ForwardScratch* s, cudaStream_t stream) {
  const ModelConfig& c = *g.config;
  const int64_t n = g.tokens * c.hidden_size;
  if (out_norm == nullptr) {
    AddRound(hidden, out, n, g.md, stream);
    return;
  }
  RmsNorm(out, out_norm->f32(), s->output_norm.f32(), g.tokens, c.hidden_size,
          static_cast<float>(c.rms_norm_eps), g.md, c.norm == NormKind::kRmsOnePlusWeight, stream);
  AddRound(hidden, s->output_norm.f32(), n, g.md, stream);
}

absl::Status DecoderLayerForward(Gemm& gemm, const LayerGeometry& g, const DeviceLayer& layer,
                                 float* hidden, DeviceCapture* cap, ForwardScratch* s,
                                 cudaStream_t stream) {
  const ModelConfig& c = *g.config;
  const int64_t n = g.tokens;
  const int64_t h = c.hidden_size;
  const int64_t qd = int64_t{c.num_attention_heads} * c.head_dim;
  const float eps = static_cast<float>(c.rms_norm_eps);
  const bool one_plus = c.norm == NormKind::kRmsOnePlusWeight;
  // Gemma's four norms: post_attention_layernorm normalises the attention output and
  // pre_/post_feedforward_layernorm wrap the MLP; otherwise post_attention_layernorm feeds the MLP.
  const bool sandwich = c.sandwich_norms;
  if (sandwich && !layer.has_ff_norms) {
    return absl::InternalError("a layer with sandwich norms lacks pre/post_feedforward_layernorm");
  }
  if (sandwich) QUANTD_RETURN_IF_ERROR(Ensure(&s->output_norm, n * h, sizeof(float)));
  DeviceBuffer& normed = cap != nullptr ? cap->attn_input : s->residual_norm;
  DeviceBuffer& out = cap != nullptr ? cap->attn_output : s->out;
  if (absl::Status st = Ensure(&normed, n * h, sizeof(float)); !st.ok()) return st;
  if (absl::Status st = Ensure(&out, n * h, sizeof(float)); !st.ok()) return st;
  DeviceBuffer& normed_op = cap != nullptr ? cap->attn_input_op : s->x_op;
  if (absl::Status st = Ensure(&normed_op, n * h, DTypeSize(g.md)); !st.ok()) return st;
  if (cap != nullptr) {
    if (absl::Status st = Ensure(&cap->o_input, n * qd, sizeof(float)); !st.ok()) return st;
  }

  RmsNorm(hidden, layer.input_norm.f32(), normed.f32(), n, h, eps, g.md, one_plus, stream);
  const void* x_op = normed.f32();
  if (g.md != DType::kF32) {
    ToOperand(normed.f32(), normed_op.as<void>(), n * h, g.md, stream);
    x_op = normed_op.as<void>();
  }
  if (absl::Status st =
          SelfAttentionForward(gemm, g, AttentionOf(layer, g.md), x_op, out.f32(), DType::kF32,
                               cap != nullptr ? cap->o_input.f32() : nullptr, s, stream);
      !st.ok())
    return st;
  AddModuleOutput(g, sandwich ? &layer.post_norm : nullptr, out.f32(), hidden, s, stream);

  DeviceBuffer& mnormed = cap != nullptr ? cap->mlp_input : s->residual_norm;
  DeviceBuffer& mout = cap != nullptr ? cap->mlp_output : s->out;
  DeviceBuffer& mnormed_op = cap != nullptr ? cap->mlp_input_op : s->x_op;
  if (absl::Status st = Ensure(&mnormed, n * h, sizeof(float)); !st.ok()) return st;
  if (absl::Status st = Ensure(&mout, n * h, sizeof(float)); !st.ok()) return st;
  if (absl::Status st = Ensure(&mnormed_op, n * h, DTypeSize(g.md)); !st.ok()) return st;
  const DeviceBuffer& mlp_norm = sandwich ? layer.pre_ff_norm : layer.post_norm;
  RmsNorm(hidden, mlp_norm.f32(), mnormed.f32(), n, h, eps, g.md, one_plus, stream);
  const void* m_op = mnormed.f32();
  if (g.md != DType::kF32) {
    ToOperand(mnormed.f32(), mnormed_op.as<void>(), n * h, g.md, stream);
    m_op = mnormed_op.as<void>();
  }
  if (layer.sparse) {
    const MoeOperands moe = MoeOperandsOf(layer.moe, c, g.md);
    const DType down_type = g.md == DType::kF32 ? DType::kF32 : g.md;  // MlpForward's operand path
    DeviceRouting& routing = cap != nullptr ? cap->moe.routing : s->routing;
    QUANTD_RETURN_IF_ERROR(RouteOnDevice(gemm, g, moe, m_op, &routing, s, stream));
    if (cap != nullptr) cap->down_input_type = down_type;
    QUANTD_RETURN_IF_ERROR(MoeBlockForward(gemm, g, moe, routing, m_op, nullptr, mout.f32(),
                                           cap != nullptr ? &cap->moe : nullptr, down_type, s,
                                           stream));
  } else {
    const MlpWeights mlp = MlpOf(layer, g.md);
    if (cap != nullptr) {
      cap->down_input_type = MlpUsesOperandPath(mlp, g.md) ? g.md : DType::kF32;
      QUANTD_RETURN_IF_ERROR(
          Ensure(&cap->down_input, n * c.intermediate_size, DTypeSize(cap->down_input_type)));
    }
    QUANTD_RETURN_IF_ERROR(MlpForward(gemm, g, mlp, m_op, mout.f32(), DType::kF32,
                                      cap != nullptr ? cap->down_input.as<void>() : nullptr, s,
                                      stream));
  }
  AddModuleOutput(g, sandwich ? &layer.post_ff_norm : nullptr, mout.f32(), hidden, s, stream);
  QUANTD_CUDA_RETURN_IF_LAUNCH_FAILED("DecoderLayerForward");
  return absl::OkStatus();
}

absl::Status UploadRope(const ModelConfig& config, const LayerAttention& attention, int64_t len,
                        DType md, DeviceBuffer* cos, DeviceBuffer* sin, cudaStream_t stream) {
  const RopeTable t = MakeRopeTable(config, attention, len, md);
  for (auto [buf, v] : {std::pair{cos, &t.cos}, {sin, &t.sin}}) {
    if (absl::Status s = buf->Reserve(v->size() * sizeof(float)); !s.ok()) return s;
    QUANTD_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(buf->f32(), v->data(), v->size() * sizeof(float),
                                                cudaMemcpyHostToDevice, stream));
  }
  // The host table dies with this call: wait for the copies.
  return CudaStatus(cudaStreamSynchronize(stream), "RoPE table upload");
}

}  // namespace quantd::engine::cuda
