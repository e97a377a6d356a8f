#include "cuda/awq_layer.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "awq/clip_search.h"
#include "awq/scale_search.h"
#include "awq/scaling_groups.h"
#include "cuda/kernels.h"
#include "cuda/moe_search.h"
#include "io/status_macros.h"
#include "model/architecture.h"
#include "model/moe_layout.h"

namespace quantd::engine::cuda {
namespace {

// All data-parallel ranks' calibration tokens (this rank's own without data parallelism).
int64_t AllTokens(const AwqLayerRun& run) {
  return run.total_tokens > 0 ? run.total_tokens : run.tokens;
}
bool DataParallel(const AwqLayerRun& run) { return run.comm != nullptr && run.comm->size() > 1; }

struct GroupOnDevice {
  const ScalingGroup* group;
  std::vector<DeviceLinear*> linears;
  const void* input;  // [rows, cols], the Linears' cached input
  int64_t cols;
  DType input_type = DType::kF32;  // float32, or md (the MLP's down_proj input)
  // Rows of `input`: the chunk's tokens, or a routed expert's rows (sparse layers work in place,
  // so those are all its calibration rows).
  int64_t rows = 0;
  int64_t total_rows = 0;  // over all chunks: the count its statistics average over
};

// A captured input on the device: the module inputs of DecoderLayerForward, by the Linear that
// reads it (q/k/v share self_attn's, gate/up the MLP's).
// `rows`: a routed expert's rows, or -1 for every token of the forward.
struct CapturedInput;
CapturedInput MoeCapturedInput(std::string_view linear, const AwqLayerRun& run,
                               const DeviceCapture& cap);
struct CapturedInput {
  const void* data;
  DType type;
  int64_t cols;
  int64_t rows = -1;
};
CapturedInput CapturedInputOf(std::string_view linear, const AwqLayerRun& run,
                              const DeviceCapture& cap) {
  const ModelConfig& c = *run.config;
  if (linear == kOProj) {
    return {cap.o_input.as<void>(), DType::kF32, int64_t{c.num_attention_heads} * c.head_dim};
  }
  if (linear == kGateProj || linear == kUpProj) {
    return {cap.mlp_input.as<void>(), DType::kF32, c.hidden_size};
  }
  if (linear == kDownProj) {
    return {cap.down_input.as<void>(), cap.down_input_type, c.intermediate_size};
  }
  if (c.moe.enabled() && IsMoeTensorName(linear)) return MoeCapturedInput(linear, run, cap);
  return {cap.attn_input.as<void>(), DType::kF32, c.hidden_size};  // q, k, v
}

// The groups over the m rows of a chunk's forward.
// A sparse block's inputs: a routed expert's gate/up read its gathered rows and its down_proj its
// slice of the down inputs; the shared expert's down_proj its own; everything else in the block
// (router, shared_expert_gate, the shared expert's gate/up) every token's block input.
CapturedInput MoeCapturedInput(std::string_view linear, const AwqLayerRun& run,
                               const DeviceCapture& cap) {
  const ModelConfig& c = *run.config;
  const int64_t h = c.hidden_size;
  const bool down = IsExpertDownProjection(linear);
  const DType md = run.settings.md;
  if (std::optional<int> e = ExpertOfLinear(linear)) {
    const DeviceRouting& r = cap.moe.routing;
    const int64_t cols = down ? c.moe.expert_intermediate_size : h;
    if (static_cast<size_t>(*e) + 1 >= r.offset.size())
      return {nullptr, md, cols, 0};  // no forward yet
    const int64_t r0 = r.offset[static_cast<size_t>(*e)];
    const int64_t rows = r.rows(static_cast<size_t>(*e));
    if (down) {
      const int64_t im = c.moe.expert_intermediate_size;
      return {cap.moe.down_input.as<char>() + r0 * im * DTypeSize(cap.down_input_type),
              cap.down_input_type, im, rows};
    }
    return {cap.moe.routed_input.as<char>() + r0 * h * DTypeSize(md), md, h, rows};
  }
  if (down) {
    return {cap.moe.shared_down_input.as<void>(), cap.down_input_type,
            c.moe.shared_expert_intermediate_size};
  }
  return {cap.mlp_input.as<void>(), DType::kF32, h};
}

std::vector<GroupOnDevice> DeviceGroups(const std::vector<ScalingGroup>& groups,
                                        const AwqLayerRun& run, int64_t m, AwqWorkspace* ws) {
  std::vector<GroupOnDevice> out;
  for (const ScalingGroup& g : groups) {
    std::vector<DeviceLinear*> linears;
    for (const std::string& name : g.linears) linears.push_back(ws->layer.linear(name));
    const CapturedInput in = CapturedInputOf(g.input, run, ws->capture);
    // Every token's input averages over all data-parallel ranks' tokens (sparse layers run on
    // one rank: their experts' rows are this rank's).
    out.push_back({&g, std::move(linears), in.data, in.cols, in.type, in.rows < 0 ? m : in.rows,
                   in.rows < 0 ? AllTokens(run) : in.rows});
  }
  return out;
}

absl::Status Download(const DeviceBuffer& src, void* dst, size_t bytes, cudaStream_t stream) {
  QUANTD_CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(dst, src.as<void>(), bytes, cudaMemcpyDeviceToHost, stream));
  return absl::OkStatus();
}

absl::Status Upload(const void* src, size_t bytes, DeviceBuffer* dst, cudaStream_t stream) {
  QUANTD_RETURN_IF_ERROR(dst->Reserve(bytes));
  QUANTD_CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(dst->as<void>(), src, bytes, cudaMemcpyHostToDevice, stream));
  return absl::OkStatus();
}

absl::Status Sync(cudaStream_t stream, const char* what) {
  QUANTD_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return CudaStatus(cudaStreamSynchronize(stream), what);
}

// Sums `count` elements of a device buffer across the data-parallel ranks through host memory
// (the Communicator's buffers are host buffers). Synchronises the stream.
template <typename T>
absl::Status AllReduceOnDevice(const AwqLayerRun& run, T* device, int64_t count, const char* what) {
  std::vector<T> host(static_cast<size_t>(count));
  const size_t bytes = host.size() * sizeof(T);
  QUANTD_CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(host.data(), device, bytes, cudaMemcpyDeviceToHost, run.stream));
  QUANTD_RETURN_IF_ERROR(Sync(run.stream, what));
  QUANTD_RETURN_IF_ERROR(run.comm->AllReduceSum(absl::MakeSpan(host)));
  QUANTD_CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(device, host.data(), bytes, cudaMemcpyHostToDevice, run.stream));
  return Sync(run.stream, what);  // `host` goes out of scope
}

absl::Status PrepareRope(const AwqLayerRun& run, int layer, AwqWorkspace* ws) {
  // The table depends on the block length, md and the layer's RoPE parameters.
  const ModelConfig& c = *run.config;
  const LayerAttention a = c.attention(layer);
  ws->layer_index = layer;
  const std::string key = absl::StrCat(
      run.len, "/", static_cast<int>(run.settings.md), "/", c.head_dim, "/", a.rope_theta, "/",
      static_cast<int>(a.rope_scaling.type), "/", a.rope_scaling.factor, "/",
      a.rope_scaling.low_freq_factor, "/", a.rope_scaling.high_freq_factor, "/",
      a.rope_scaling.original_max_position_embeddings);
  if (ws->rope_key == key) return absl::OkStatus();
  QUANTD_RETURN_IF_ERROR(
      UploadRope(c, a, run.len, run.settings.md, &ws->rope_cos, &ws->rope_sin, run.stream));
  ws->rope_key = key;
  return absl::OkStatus();
}

// The geometry of `tokens` rows (a chunk of whole blocks).
LayerGeometry GeometryOf(const AwqLayerRun& run, const AwqWorkspace& ws, int64_t tokens) {
  return {run.config,
          run.settings.md,
          tokens,
          run.len,
          ws.rope_cos.f32(),
          ws.rope_sin.f32(),
          AttentionOptionsOf(*run.config, ws.layer_index)};
}

// The device hidden states of rows [t0, t0 + m): the resident buffer itself when the run works in
// place, else a copy (from device or pinned host memory) in the workspace's chunk buffer.
absl::StatusOr<float*> ChunkIn(const AwqLayerRun& run, int64_t t0, int64_t m, AwqWorkspace* ws) {
  const int64_t h = run.config->hidden_size;
  if (run.in_place) return run.hidden + t0 * h;
  QUANTD_RETURN_IF_ERROR(Ensure(&ws->chunk_hidden, run.chunk_tokens * h, sizeof(float)));
  QUANTD_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(ws->chunk_hidden.f32(), run.hidden + t0 * h,
                                              static_cast<size_t>(m * h) * sizeof(float),
                                              cudaMemcpyDefault, run.stream));
  return ws->chunk_hidden.f32();
}

// Writes the chunk's layer output to run.hidden_out (nothing to do in place).
absl::Status ChunkOut(const AwqLayerRun& run, int64_t t0, int64_t m, AwqWorkspace* ws) {
  if (run.in_place) return absl::OkStatus();
  const int64_t h = run.config->hidden_size;
  return CudaStatus(
      cudaMemcpyAsync(run.hidden_out + t0 * h, ws->chunk_hidden.f32(),
                      static_cast<size_t>(m * h) * sizeof(float), cudaMemcpyDefault, run.stream),
      "hidden states chunk copy");
}

// Rows per chunk: all of them in place.
int64_t ChunkTokens(const AwqLayerRun& run) {
  return run.in_place ? run.tokens : std::max<int64_t>(run.len, run.chunk_tokens);
}

absl::Status CheckGeometry(const ModelConfig& c, const LayerWeights& w, int64_t group) {
  QUANTD_RETURN_IF_ERROR(CheckCudaSupports(c));
  for (const LinearSpec& spec : LayerLinears(c)) {
    const LinearWeights& l = *FindLinear(w, spec.name);
    if (group > 1024 || (group > 0 && l.in_features() % group != 0)) {
      return absl::InvalidArgumentError(absl::StrCat(spec.name, ": in_features ", l.in_features(),
                                                     " is not a multiple of group_size ", group,
                                                     " (1..1024, or ≤ 0: per-channel)"));
    }
    if (l.out_features() % 8 != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(spec.name, ": out_features ", l.out_features(),
                       " is not a multiple of 8 (the GEMM packing needs it)"));
    }
  }
  return absl::OkStatus();
}

bool IsGramGroup(const GroupOnDevice& g) { return g.group->inspect == InspectedModule::kLinear; }

// A routed expert's down_proj group whose expert got fewer than min_expert_tokens rows keeps
// identity scales (the CPU backend's UnderCalibrated): not searched, nothing folded.
bool Unsearched(const AwqLayerRun& run, const GroupOnDevice& g) {
  return ExpertOfLinear(g.group->input).has_value() &&
         (g.total_rows == 0 || g.total_rows < run.settings.min_expert_tokens);
}

// w_mean of a group into means[c, 2c) and x_mean from the input's column sums (over all tokens,
// sums[0, c)) into means[0, c). Queued only; sums[c, 2c) is used as scratch.
absl::Status FinishGroupStatistics(const AwqLayerRun& run, const GroupOnDevice& g, double* sums,
                                   float* means, AwqWorkspace* ws) {
  const DType md = run.settings.md;
  const int64_t c = g.cols;
  const int64_t gs = run.settings.scheme().GroupFor(c);
  int64_t max_rows = 0, rows = 0;
  for (const DeviceLinear* l : g.linears) {
    max_rows = std::max(max_rows, l->out);
    rows += l->out;
  }
  QUANTD_RETURN_IF_ERROR(Ensure(&ws->denom, max_rows * (c / gs), sizeof(float)));
  FinishMean(sums, c, g.total_rows, md, means, run.stream);
  QUANTD_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(sums + c, 0, c * sizeof(double), run.stream));
  for (const DeviceLinear* l : g.linears) {
    AddNormalizedWeightSums(l->weight.f32(), l->out, c, gs, md, ws->denom.f32(), sums + c,
                            run.stream);
  }
  FinishMean(sums + c, c, rows, md, means + c, run.stream);
  return absl::OkStatus();
}

// gram (+)= xᵀx over the m rows of a Gram-form group's captured input (the Linear's output MSE is
// a quadratic form in it, so token chunks add up).
// The first m rows of a Gram-form group's captured input as a GEMM operand in md: the capture
// itself when it is stored in md, else an md copy in the scratch. Queued only.
absl::StatusOr<const void*> GroupInputOperand(const AwqLayerRun& run, const GroupOnDevice& g,
                                              int64_t m, AwqWorkspace* ws) {
  const DType md = run.settings.md;
  if (g.input_type == md) return g.input;
  QUANTD_RETURN_IF_ERROR(Ensure(&ws->scratch.act_op, m * g.cols, DTypeSize(md)));
  ToOperand(static_cast<const float*>(g.input), ws->scratch.act_op.as<void>(), m * g.cols, md,
            run.stream);
  return ws->scratch.act_op.as<void>();
}

absl::Status AccumulateGram(const AwqLayerRun& run, const GroupOnDevice& g, int64_t m,
                            bool accumulate, DeviceBuffer* gram, AwqWorkspace* ws) {
  const int64_t c = g.cols;
  QUANTD_RETURN_IF_ERROR(Ensure(gram, c * c, sizeof(float)));
  QUANTD_ASSIGN_OR_RETURN(const void* x_op, GroupInputOperand(run, g, m, ws));
  return run.gemm->Gram(x_op, gram->f32(), m, c, run.settings.md, accumulate);
}

// Adds the summed squared output error of every grid point to losses[kScaleGridPoints] for a
// Gram-form group (grid scale vectors s_dev[kScaleGridPoints, c], `gram` over all tokens; split
// in place) and returns the divisor that makes the sums AutoAWQ's mean losses. Queued only.
absl::StatusOr<double> GramLosses(const AwqLayerRun& run, const GroupOnDevice& g,
                                  DeviceBuffer* gram, const float* s_dev, double* losses,
                                  AwqWorkspace* ws) {
  const DType md = run.settings.md;
  const int64_t c = g.cols;
  const int64_t gs = run.settings.scheme().GroupFor(c);
  const bool symmetric = !run.settings.zero_point;
  constexpr int kGrid = kScaleGridPoints;
  // loss = trace(ΔW · G · ΔWᵀ) / (n · out) with G = xᵀx: the Linear's output MSE, exactly.
  DeviceLinear* l = g.linears.front();
  const int64_t out = l->out;
  QUANTD_RETURN_IF_ERROR(Ensure(&ws->gram_lo, c * c, sizeof(float)));
  SplitTf32(gram->f32(), ws->gram_lo.f32(), c * c, run.stream);
  const size_t per_ratio = static_cast<size_t>(out * c) * sizeof(float) * 3;
  const int batch = static_cast<int>(
      std::clamp<size_t>(kTrialBudgetBytes / per_ratio, 1, static_cast<size_t>(kGrid)));
  for (DeviceBuffer* b : {&ws->trial_a, &ws->trial_b, &ws->product}) {
    QUANTD_RETURN_IF_ERROR(Ensure(b, batch * out * c, sizeof(float)));
  }
  for (int k0 = 0; k0 < kGrid; k0 += batch) {
    const int r = std::min(batch, kGrid - k0);
    ScaleQuantizeUnscale(l->weight.f32(), s_dev + k0 * c, r, out, c, gs, symmetric, md, nullptr,
                         ws->trial_a.f32(), nullptr, run.stream);
    SplitTf32(ws->trial_a.f32(), ws->trial_b.f32(), r * out * c, run.stream);
    QUANTD_RETURN_IF_ERROR(run.gemm->MulSymmetricSplit(ws->trial_a.f32(), ws->trial_b.f32(),
                                                       gram->f32(), ws->gram_lo.f32(),
                                                       ws->product.f32(), r * out, c));
    for (int i = 0; i < r; ++i) {
      const int64_t at = i * out * c;
      AddDot(ws->trial_a.f32() + at, ws->trial_b.f32() + at, ws->product.f32() + at, out * c,
             losses + k0 + i, run.stream);
    }
  }
  return static_cast<double>(g.total_rows) * static_cast<double>(out);
}

// Adds, for the first `geo.tokens` rows whose module inputs and outputs are in ws->capture, the
// summed squared output error of the inspected module (self_attn or mlp) rerun with the trial
// weights of each of `points` scale vectors s_dev[points, c] to losses[points], and returns the
// divisor (over all tokens). Queued only.
absl::StatusOr<double> TrialLosses(const AwqLayerRun& run, const GroupOnDevice& g,
                                   const LayerGeometry& geo, const float* s_dev, int points,
                                   double* losses, AwqWorkspace* ws) {
  if (g.group->inspect == InspectedModule::kMoe) {
    return MoeTrialLosses(run, *g.group, g.linears, geo, s_dev, points, losses, ws);
  }
  const DType md = run.settings.md;
  const int64_t c = g.cols;
  const int64_t gs = run.settings.scheme().GroupFor(c);
  const bool symmetric = !run.settings.zero_point;
  const int64_t n = geo.tokens;
  const int64_t h = run.config->hidden_size;
  const size_t elem = static_cast<size_t>(DTypeSize(md));
  const int kGrid = points;
  DeviceCapture& cap = ws->capture;
  DeviceBuffer* trials[] = {&ws->trial_a, &ws->trial_b, &ws->trial_c};
  size_t per_ratio = 0;
  for (const DeviceLinear* l : g.linears) per_ratio += static_cast<size_t>(l->out * c) * elem;
  const int batch = static_cast<int>(
      std::clamp<size_t>(kTrialBudgetBytes / per_ratio, 1, static_cast<size_t>(kGrid)));
  for (size_t i = 0; i < g.linears.size(); ++i) {
    QUANTD_RETURN_IF_ERROR(Ensure(trials[i], batch * g.linears[i]->out * c, elem));
  }
  QUANTD_RETURN_IF_ERROR(Ensure(&ws->out, n * h, sizeof(float)));
  const bool attn = g.group->inspect == InspectedModule::kSelfAttention;
  const void* x_op = md == DType::kF32
                         ? static_cast<const void*>(g.input)
                         : (attn ? cap.attn_input_op.as<void>() : cap.mlp_input_op.as<void>());
  const float* ref = attn ? cap.attn_output.f32() : cap.mlp_output.f32();
  // With a 16-bit md the trials compare md outputs straight from cuBLAS(Lt) (o_proj with its
  // bias in the epilogue; the MLP on its bias-free path) with an md copy of the reference: half
  // the loss kernel's traffic and no rounding pass.
  const MlpWeights mlp = MlpOf(ws->layer, md);
  const bool md_out =
      md != DType::kF32 && (attn || (MlpUsesOperandPath(mlp, md) && mlp.down_bias == nullptr));
  const DType out_type = md_out ? md : DType::kF32;
  const void* ref_loss = ref;
  if (out_type != DType::kF32) {
    QUANTD_RETURN_IF_ERROR(Ensure(&ws->ref_op, n * h, elem));
    ToOperand(ref, ws->ref_op.as<void>(), n * h, md, run.stream);
    ref_loss = ws->ref_op.as<void>();
  }
  for (int k0 = 0; k0 < kGrid; k0 += batch) {
    const int r = std::min(batch, kGrid - k0);
    for (size_t i = 0; i < g.linears.size(); ++i) {
      ScaleQuantizeUnscale(g.linears[i]->weight.f32(), s_dev + k0 * c, r, g.linears[i]->out, c, gs,
                           symmetric, md, nullptr, nullptr, trials[i]->as<void>(), run.stream);
    }
    for (int j = 0; j < r; ++j) {
      auto trial = [&](size_t i) -> const void* {
        return trials[i]->as<char>() + static_cast<size_t>(j * g.linears[i]->out * c) * elem;
      };
      // The trial operand of a group Linear, or null for the layer's own.
      auto trial_of = [&](const char* name) -> const void* {
        for (size_t i = 0; i < g.group->linears.size(); ++i) {
          if (g.group->linears[i] == name) return trial(i);
        }
        return nullptr;
      };
      auto substitute = [&](const char* name, const void** op) {
        if (const void* t = trial_of(name)) *op = t;
      };
      if (attn) {
        AttentionWeights w = AttentionOf(ws->layer, md);
        substitute(kQProj, &w.q);
        if (!run.settings.attention_trials_use_float_kv) {
          substitute(kKProj, &w.k);
          substitute(kVProj, &w.v);
        }
        substitute(kOProj, &w.o);
        QUANTD_RETURN_IF_ERROR(SelfAttentionForward(*run.gemm, geo, w, x_op, ws->out.as<void>(),
                                                    out_type, nullptr, &ws->scratch, run.stream));
      } else {
        MlpWeights w = mlp;
        substitute(kGateProj, &w.gate);
        substitute(kUpProj, &w.up);
        substitute(kDownProj, &w.down);
        QUANTD_RETURN_IF_ERROR(MlpForward(*run.gemm, geo, w, x_op, ws->out.as<void>(), out_type,
                                          nullptr, &ws->scratch, run.stream));
      }
      AddSquaredError(ref_loss, ws->out.as<void>(), out_type, n * h, md, losses + k0 + j,
                      run.stream);
    }
  }
  return static_cast<double>(AllTokens(run)) * static_cast<double>(h);
}

// The quality report's comparison for a Gram-form group (one Linear, o_proj or down_proj): adds
// Σ (x · (trialᵀ − wᵀ))² over the first n captured rows for each of `points` scale vectors
// s_dev[points, c] to losses[points] and returns the divisor (n · out) that makes them the CPU
// reference's LinearOutputMse on the same rows. x, w and the trial weights are md values, so the
// md GEMMs with float32 output are exact up to float32 accumulation: the quadratic form, without
// the c × c Gram matrix of the rows (a direct product on the slice costs n/c of a grid point).
// Queued only.
absl::StatusOr<double> LinearSliceLosses(const AwqLayerRun& run, const GroupOnDevice& g, int64_t n,
                                         const float* s_dev, int points, double* losses,
                                         AwqWorkspace* ws) {
  const DType md = run.settings.md;
  const int64_t c = g.cols;
  const int64_t gs = run.settings.scheme().GroupFor(c);
  const DeviceLinear* l = g.linears.front();
  const int64_t out = l->out;
  QUANTD_ASSIGN_OR_RETURN(const void* x_op, GroupInputOperand(run, g, n, ws));
  QUANTD_RETURN_IF_ERROR(Ensure(&ws->ref_op, n * out, sizeof(float)));
  QUANTD_RETURN_IF_ERROR(Ensure(&ws->out, n * out, sizeof(float)));
  QUANTD_RETURN_IF_ERROR(Ensure(&ws->trial_a, out * c, DTypeSize(md)));
  // The reference on the Linear's md operand (the original weights: scales are not folded yet).
  QUANTD_RETURN_IF_ERROR(
      run.gemm->Linear(x_op, l->op(md), ws->ref_op.f32(), n, out, c, md, DType::kF32));
  for (int k = 0; k < points; ++k) {
    ScaleQuantizeUnscale(l->weight.f32(), s_dev + k * c, 1, out, c, gs, !run.settings.zero_point,
                         md, nullptr, nullptr, ws->trial_a.as<void>(), run.stream);
    QUANTD_RETURN_IF_ERROR(
        run.gemm->Linear(x_op, ws->trial_a.as<void>(), ws->out.f32(), n, out, c, md, DType::kF32));
    AddSquaredError(ws->ref_op.f32(), ws->out.f32(), DType::kF32, n * out, DType::kF32, losses + k,
                    run.stream);
  }
  return static_cast<double>(n) * static_cast<double>(out);
}

// Folds a group's scales into the previous op and the group's Linears (awq/scaling_groups.cc).
// `sd`: the chosen scale vector [c] on the device.
absl::Status ApplyScales(const AwqLayerRun& run, const GroupOnDevice& g, const float* sd,
                         AwqWorkspace* ws) {
  const DType md = run.settings.md;
  const int64_t c = g.cols;
  DeviceLayer& l = ws->layer;
  auto divide_rows = [&](DeviceLinear* prev) {
    const int64_t first = prev->out - c;
    DivideRows(prev->weight.f32(), sd, first, c, prev->in, md, run.stream);
    if (prev->has_bias) DivideColumns(prev->bias.f32() + first, sd, 1, c, md, run.stream);
  };
  if (DeviceLinear* prev = l.linear(g.group->prev_op)) {
    divide_rows(prev);
  } else if (run.config->norm == NormKind::kRmsOnePlusWeight) {
    DivideOnePlusColumns(l.norm(g.group->prev_op)->f32(), sd, c, md, run.stream);
  } else {
    DivideColumns(l.norm(g.group->prev_op)->f32(), sd, 1, c, md, run.stream);
  }
  for (DeviceLinear* lin : g.linears)
    MultiplyColumns(lin->weight.f32(), sd, lin->out, c, md, run.stream);
  // The router (and shared_expert_gate) see the scaled input too: scaling their columns keeps the
  // routing as it was (docs/moe.md); AutoAWQ leaves them out (settings.scale_router_inputs off).
  for (const std::string& name : FoldedGroup(*g.group, run.settings).float_consumers) {
    DeviceLinear* lin = l.linear(name);
    MultiplyColumns(lin->weight.f32(), sd, lin->out, c, md, run.stream);
  }
  QUANTD_CUDA_RETURN_IF_LAUNCH_FAILED("ApplyScales");
  return absl::OkStatus();
}

static_assert(kClipStepCount == kClipShrinkSteps);

// The clip search of one Linear over its sampled, scale-divided inputs x [n_tok, cols], in chunks
// of groups so that the products stay under kTrialBudgetBytes. With a 16-bit md the weights and
// trial weights are exact in TF32 and x comes split as x + x_lo (SplitTf32): the products run on
// the TF32 tensor cores at float32 accuracy; float32 md (x_lo null) keeps float32 GEMMs. Queued
// only: the decision's contents arrive with the arena's FinishDownloads().
absl::StatusOr<ClipDecision> ClipLinear(const AwqLayerRun& run, const char* name,
                                        const DeviceLinear& l, const float* x, const float* x_lo,
                                        int64_t n_tok, AwqWorkspace* ws) {
  const DType md = run.settings.md;
  const int64_t gs = run.settings.scheme().GroupFor(l.in);
  const bool symmetric = !run.settings.zero_point;
  const int64_t rows = l.out, cols = l.in, groups = cols / gs;
  constexpr int64_t kSteps = kClipStepCount;
  const size_t per_group =
      static_cast<size_t>(n_tok * (kSteps + 1) * rows + kSteps * rows * gs + kSteps * rows) *
      sizeof(float);
  const int64_t chunk =
      std::clamp<int64_t>(static_cast<int64_t>(kTrialBudgetBytes / per_group), 1, groups);
  QUANTD_RETURN_IF_ERROR(Ensure(&ws->trial_a, chunk * kSteps * rows * gs, sizeof(float)));
  QUANTD_RETURN_IF_ERROR(Ensure(&ws->product, chunk * n_tok * kSteps * rows, sizeof(float)));
  QUANTD_RETURN_IF_ERROR(Ensure(&ws->trial_b, chunk * n_tok * rows, sizeof(float)));
  QUANTD_RETURN_IF_ERROR(Ensure(&ws->trial_c, chunk * kSteps * rows, sizeof(float)));
  QUANTD_RETURN_IF_ERROR(Ensure(&ws->denom, rows * groups, sizeof(float)));
  QUANTD_RETURN_IF_ERROR(Ensure(&ws->max_val, rows * groups, sizeof(float)));
  QUANTD_RETURN_IF_ERROR(Ensure(&ws->shrink, rows * groups, 1));
  float* m0 = ws->denom.f32();
  auto product = [&](const Gemm::Batched& p, int64_t g0) {
    return x_lo == nullptr ? run.gemm->BatchedF32(p)
                           : run.gemm->BatchedTf32Split(p, x_lo + g0 * gs);
  };
  for (int64_t g0 = 0; g0 < groups; g0 += chunk) {
    const int64_t ng = std::min(chunk, groups - g0);
    ClipTrials(l.weight.f32(), rows, cols, gs, g0, ng, symmetric, md, ws->trial_a.f32(), m0,
               run.stream);
    // Row-major ref_g [n_tok, rows] = x_g · w_gᵀ is column-major w_gᵀ-major: (w_g)ᵀ · x_gᵀ.
    QUANTD_RETURN_IF_ERROR(
        product({true, false, rows, n_tok, gs, l.weight.f32() + g0 * gs, cols, gs, x + g0 * gs,
                 cols, gs, ws->trial_b.f32(), rows, n_tok * rows, ng},
                g0));
    QUANTD_RETURN_IF_ERROR(product(
        {true, false, kSteps * rows, n_tok, gs, ws->trial_a.f32(), gs, kSteps * rows * gs,
         x + g0 * gs, cols, gs, ws->product.f32(), kSteps * rows, n_tok * kSteps * rows, ng},
        g0));
    ClipErrors(ws->product.f32(), ws->trial_b.f32(), ng, n_tok, rows, md, ws->trial_c.f32(),
               run.stream);
    ClipSelect(ws->trial_c.f32(), m0, rows, groups, g0, ng, md, ws->max_val.f32(),
               ws->shrink.as<uint8_t>(), run.stream);
  }
  ApplyClip(l.weight.f32(), ws->max_val.f32(), rows, cols, gs, run.stream);
  ClipDecision d;
  d.linear = name;
  d.max_val = Tensor({rows, groups});
  d.shrink_index.resize(static_cast<size_t>(rows * groups));
  QUANTD_RETURN_IF_ERROR(ws->host.Download(
      ws->max_val.as<void>(), d.max_val.data.size() * sizeof(float), d.max_val.ptr(), run.stream));
  QUANTD_RETURN_IF_ERROR(ws->host.Download(ws->shrink.as<void>(), d.shrink_index.size(),
                                           d.shrink_index.data(), run.stream));
  return d;
}

// The captured inputs whose sampled rows the clip search reads: AwqWorkspace::samples slot i holds
// kClipInputNames[i]'s (the Linears sharing it read the same slot).
constexpr const char* kClipInputNames[kClipInputs] = {kQProj, kOProj, kGateProj, kDownProj};
int ClipInputSlot(std::string_view linear) {
  if (linear == kOProj) return 1;
  if (linear == kGateProj || linear == kUpProj) return 2;
  if (linear == kDownProj) return 3;
  return 0;
}

// The clip search's token sample: every step-th row of all calibration tokens (AutoAWQ's
// n_sample_token), `kept` rows in all.
int64_t ClipSampleStep(const AwqLayerRun& run) { return engine::ClipSampleStep(AllTokens(run)); }
int64_t ClipSampleRows(const AwqLayerRun& run) {
  const int64_t step = ClipSampleStep(run);
  return (AllTokens(run) + step - 1) / step;
}

// Copies the sampled rows among [t0, t0 + m) (all ranks' numbering) of every clip input, whose
// captures hold rows t0.. of the chunk, into ws->samples.
absl::Status GatherClipSamples(const AwqLayerRun& run, int64_t t0, int64_t m, AwqWorkspace* ws) {
  const int64_t step = ClipSampleStep(run);
  const int64_t kept = ClipSampleRows(run);
  const int64_t j0 = (t0 + step - 1) / step;
  const int64_t j1 = std::min(kept, (t0 + m + step - 1) / step);
  if (j1 <= j0) return absl::OkStatus();
  // A sparse layer has no dense MLP: its block's Linears are sampled per expert (ClipLinears).
  const int slots = run.config->moe.enabled() ? 2 : kClipInputs;
  for (int i = 0; i < slots; ++i) {
    const CapturedInput in = CapturedInputOf(kClipInputNames[i], run, ws->capture);
    QUANTD_RETURN_IF_ERROR(Ensure(&ws->samples[i], kept * in.cols, sizeof(float)));
    const char* first = static_cast<const char*>(in.data) +
                        (j0 * step - t0) * in.cols * static_cast<int64_t>(DTypeSize(in.type));
    GatherRows(first, in.type, step, j1 - j0, in.cols, ws->samples[i].f32() + j0 * in.cols,
               run.stream);
  }
  return absl::OkStatus();
}

// AutoAWQ clips every Linear except q/k projections — o_proj too when no scaling group feeds it
// (GQA) — on the scaled weights, with its sampled input divided by the scales of the group that
// scaled that input (as ClipLinears of the CPU backend, in the same order). `scales[i]`: the
// chosen scale vector of groups[i] on the device. The samples are divided (and split) in place.
absl::Status ClipLinears(const AwqLayerRun& run, const std::vector<ScalingGroup>& groups,
                         const std::vector<const float*>& scales, AwqWorkspace* ws,
                         std::vector<ClipDecision>* clips) {
  const DType md = run.settings.md;
  const std::vector<LinearSpec> specs = LayerLinears(*run.config);
  // Downloads are queued into the decisions: they must not move until the arena delivers.
  clips->reserve(clips->size() + specs.size());
  // Divides a sample [rows, cols] by the scales that scaled `linear`'s input and splits it.
  auto prepare = [&](std::string_view linear, float* x, int64_t rows, int64_t cols,
                     DeviceBuffer* lo) -> absl::Status {
    for (size_t i = 0; i < groups.size(); ++i) {
      if (scales[i] != nullptr && GroupScalesInputOf(groups[i], linear)) {
        DivideColumns(x, scales[i], rows, cols, md, run.stream);
      }
    }
    if (md == DType::kF32) return absl::OkStatus();
    QUANTD_RETURN_IF_ERROR(Ensure(lo, rows * cols, sizeof(float)));
    SplitTf32(x, lo->f32(), rows * cols, run.stream);
    return absl::OkStatus();
  };
  const int64_t kept = ClipSampleRows(run);
  std::array<bool, kClipInputs> prepared{};  // Linears sharing an input share its sample
  const void* moe_prepared = nullptr;        // the sparse block input sampled last
  int64_t moe_kept = 0;
  for (const LinearSpec& spec : specs) {
    if (!spec.clip) continue;
    const CapturedInput in = CapturedInputOf(spec.name, run, ws->capture);
    float* x = nullptr;
    const float* x_lo = nullptr;
    int64_t n_tok = kept;
    if (run.config->moe.enabled() && IsMoeTensorName(spec.name)) {
      // A block Linear's own input, sampled as AutoAWQ samples an expert's cache (every step-th
      // of its rows); experts under min_expert_tokens get no clip (the CPU's UnderCalibrated).
      const int64_t rows = in.rows < 0 ? run.tokens : in.rows;
      if (in.rows >= 0 && (rows == 0 || rows < run.settings.min_expert_tokens)) continue;
      const int64_t step = std::max<int64_t>(1, rows / kClipSampleTokens);
      n_tok = (rows + step - 1) / step;
      if (in.data != moe_prepared) {
        QUANTD_RETURN_IF_ERROR(Ensure(&ws->moe_sample, n_tok * in.cols, sizeof(float)));
        GatherRows(in.data, in.type, step, n_tok, in.cols, ws->moe_sample.f32(), run.stream);
        QUANTD_RETURN_IF_ERROR(
            prepare(spec.name, ws->moe_sample.f32(), n_tok, in.cols, &ws->moe_sample_lo));
        moe_prepared = in.data;
        moe_kept = n_tok;
      }
      n_tok = moe_kept;
      x = ws->moe_sample.f32();
      x_lo = md != DType::kF32 ? ws->moe_sample_lo.f32() : nullptr;
    } else {
      const int slot = ClipInputSlot(spec.name);
      x = ws->samples[slot].f32();
      if (!prepared[slot]) {
        QUANTD_RETURN_IF_ERROR(prepare(spec.name, x, kept, in.cols, &ws->samples_lo[slot]));
        prepared[slot] = true;
      }
      x_lo = md != DType::kF32 ? ws->samples_lo[slot].f32() : nullptr;
    }
    QUANTD_ASSIGN_OR_RETURN(
        ClipDecision d,
        ClipLinear(run, spec.name.c_str(), *ws->layer.linear(spec.name), x, x_lo, n_tok, ws));
    clips->push_back(std::move(d));
  }
  return absl::OkStatus();
}

// Queued only: the packed tensors, and the float32 bias (`bias`, empty without one; the caller
// converts it to the scale dtype), arrive with the arena's FinishDownloads(). With `dequantize`
// the Linear's float32 master is replaced by its dequantized weight (the quantized model's).
absl::StatusOr<GemmPackedLinear> QuantizeAndPack(const AwqLayerRun& run, DeviceLinear& l,
                                                 bool dequantize, AwqWorkspace* ws,
                                                 std::vector<float>* bias) {
  const int64_t gs = run.settings.scheme().GroupFor(l.in);
  const DType qd = run.settings.scale_dtype;
  const int64_t groups = l.in / gs;
  QUANTD_RETURN_IF_ERROR(Ensure(&ws->codes, l.out * l.in, 1));
  QUANTD_RETURN_IF_ERROR(Ensure(&ws->qscales, l.out * groups, sizeof(float)));
  QUANTD_RETURN_IF_ERROR(Ensure(&ws->zeros, l.out * groups, 1));
  QUANTD_RETURN_IF_ERROR(Ensure(&ws->qweight, l.in * l.out / 8, sizeof(int32_t)));
  QUANTD_RETURN_IF_ERROR(Ensure(&ws->qzeros, groups * l.out / 8, sizeof(int32_t)));
  QUANTD_RETURN_IF_ERROR(Ensure(&ws->scales_t, groups * l.out, sizeof(uint16_t)));
  QuantizeFinal(l.weight.f32(), l.out, l.in, gs, !run.settings.zero_point, qd,
                ws->codes.as<uint8_t>(), ws->qscales.f32(), ws->zeros.as<uint8_t>(),
                dequantize ? l.weight.f32() : nullptr, run.stream);
  PackGemm(ws->codes.as<uint8_t>(), ws->zeros.as<uint8_t>(), ws->qscales.f32(), l.out, l.in, gs, qd,
           ws->qweight.as<int32_t>(), ws->qzeros.as<int32_t>(), ws->scales_t.as<uint16_t>(),
           run.stream);
  GemmPackedLinear p;
  p.in_features = l.in;
  p.out_features = l.out;
  p.group_size = gs;
  p.scale_dtype = qd;
  p.qweight.resize(static_cast<size_t>(l.in * l.out / 8));
  p.qzeros.resize(static_cast<size_t>(groups * l.out / 8));
  p.scales.resize(static_cast<size_t>(groups * l.out));
  PinnedArena& host = ws->host;
  QUANTD_RETURN_IF_ERROR(host.Download(ws->qweight.as<void>(), p.qweight.size() * sizeof(int32_t),
                                       p.qweight.data(), run.stream));
  QUANTD_RETURN_IF_ERROR(host.Download(ws->qzeros.as<void>(), p.qzeros.size() * sizeof(int32_t),
                                       p.qzeros.data(), run.stream));
  QUANTD_RETURN_IF_ERROR(host.Download(ws->scales_t.as<void>(), p.scales.size() * sizeof(uint16_t),
                                       p.scales.data(), run.stream));
  bias->clear();
  if (l.has_bias) {
    bias->resize(static_cast<size_t>(l.out));
    QUANTD_RETURN_IF_ERROR(
        host.Download(l.bias.as<void>(), bias->size() * sizeof(float), bias->data(), run.stream));
  }
  return p;
}

// Queued only, as QuantizeAndPack.
absl::StatusOr<Tensor> DownloadTensor(const DeviceBuffer& buf, const std::vector<int64_t>& shape,
                                      cudaStream_t stream, PinnedArena* host) {
  Tensor t(shape);
  QUANTD_RETURN_IF_ERROR(
      host->Download(buf.as<void>(), t.data.size() * sizeof(float), t.ptr(), stream));
  return t;
}

// Seconds since the last call (host clock; callers measure at device synchronisation points).
class Lap {
 public:
  double Next() {
    const auto now = std::chrono::steady_clock::now();
    const double s = std::chrono::duration<double>(now - last_).count();
    last_ = now;
    return s;
  }

 private:
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

// Device time between marks on a stream (CUDA events), beside the host's Lap: where the host takes
// longer than the device over a phase, the device waited for the host.
class DeviceLap {
 public:
  explicit DeviceLap(cudaStream_t stream) : stream_(stream) {
    for (cudaEvent_t& e : events_) cudaEventCreate(&e);
    cudaEventRecord(events_[0], stream_);
  }
  ~DeviceLap() {
    for (cudaEvent_t e : events_) cudaEventDestroy(e);
  }
  DeviceLap(const DeviceLap&) = delete;
  DeviceLap& operator=(const DeviceLap&) = delete;

  // Queues the end of the current phase (before the host synchronises with the stream).
  void Mark() { cudaEventRecord(events_[last_ ^ 1], stream_); }
  // After the synchronisation: the device seconds since the previous mark.
  double Next() {
    float ms = 0.0f;
    cudaEventElapsedTime(&ms, events_[last_], events_[last_ ^ 1]);
    last_ ^= 1;
    return ms * 1e-3;
  }

 private:
  cudaStream_t stream_;
  cudaEvent_t events_[2] = {};
  int last_ = 0;
};

// Device time of a piece of work queued in several spans on a stream (CUDA events), read after
// the host has synchronised with the stream: what the quality report's work costs per layer.
class DeviceSpans {
 public:
  explicit DeviceSpans(cudaStream_t stream) : stream_(stream) {}
  ~DeviceSpans() {
    for (cudaEvent_t e : events_) cudaEventDestroy(e);
  }
  DeviceSpans(const DeviceSpans&) = delete;
  DeviceSpans& operator=(const DeviceSpans&) = delete;

  void Start() { Record(); }
  void Stop() { Record(); }
  // After the synchronisation: the device seconds of all spans so far.
  double Seconds() const {
    double total = 0.0;
    for (size_t i = 0; i + 1 < events_.size(); i += 2) {
      float ms = 0.0f;
      cudaEventElapsedTime(&ms, events_[i], events_[i + 1]);
      total += ms * 1e-3;
    }
    return total;
  }

 private:
  void Record() {
    cudaEvent_t e = nullptr;
    cudaEventCreate(&e);
    cudaEventRecord(e, stream_);
    events_.push_back(e);
  }
  cudaStream_t stream_;
  std::vector<cudaEvent_t> events_;
};

}  // namespace

CudaPhaseSeconds& GlobalPhaseTotals() {
  // Per device, like the memory figures: data-parallel ranks run on threads of their own.
  static std::array<CudaPhaseSeconds, 64> totals;
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) device = 0;
  return totals[static_cast<size_t>(std::clamp(device, 0, 63))];
}

namespace {

// hidden ← layer(hidden) over all of run's tokens with the weights of layer `layer` in ws->layer
// (in run.settings.md). Queued only.
absl::Status ForwardResidentLayer(const AwqLayerRun& run, int layer, AwqWorkspace* ws) {
  QUANTD_RETURN_IF_ERROR(PrepareRope(run, layer, ws));
  const int64_t chunk = ChunkTokens(run);
  for (int64_t t0 = 0; t0 < run.tokens; t0 += chunk) {
    const int64_t m = std::min(chunk, run.tokens - t0);
    QUANTD_ASSIGN_OR_RETURN(float* x, ChunkIn(run, t0, m, ws));
    QUANTD_RETURN_IF_ERROR(DecoderLayerForward(*run.gemm, GeometryOf(run, *ws, m), ws->layer, x,
                                               nullptr, &ws->scratch, run.stream));
    QUANTD_RETURN_IF_ERROR(ChunkOut(run, t0, m, ws));
  }
  return absl::OkStatus();
}

// ws->layer, whose quantized Linears now hold their dequantized weights, as the quantized model
// runs it in qmd: biases rounded to qmd as the checkpoint stores them, qmd operands rebuilt (the
// float Linears of a MoE block too: the router and shared_expert_gate run in qmd). Queued only.
absl::Status PrepareQuantizedLayer(const ModelConfig& c, DType qmd, cudaStream_t stream,
                                   DeviceLayer* layer) {
  std::vector<DeviceLinear*> linears;
  for (const LinearSpec& spec : LayerLinears(c)) linears.push_back(layer->linear(spec.name));
  if (layer->sparse) {
    linears.push_back(&layer->moe.router);
    if (layer->moe.has_shared_expert) linears.push_back(&layer->moe.shared_expert_gate);
  }
  for (DeviceLinear* l : linears) {
    QUANTD_RETURN_IF_ERROR(Ensure(&l->operand, l->out * l->in, DTypeSize(qmd)));
    if (l->has_bias) {
      BiasRound(l->bias.f32(), nullptr, 1, l->out, qmd, stream);
      QUANTD_RETURN_IF_ERROR(Ensure(&l->bias_op, l->out, DTypeSize(qmd)));
    }
    RefreshOperand(l, qmd, stream);
  }
  QUANTD_CUDA_RETURN_IF_LAUNCH_FAILED("PrepareQuantizedLayer");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<QuantizedLayer> QuantizeLayerOnDevice(const AwqLayerRun& run, LayerWeights w,
                                                     bool uploaded, const CancellationToken* cancel,
                                                     const HeldOutRuns& held_out,
                                                     AwqWorkspace* ws) {
  const ModelConfig& c = *run.config;
  const DType md = run.settings.md;
  constexpr int kGrid = kScaleGridPoints;
  // The quality report's measurements come with the held-out states (Backend::SetHeldOut).
  const bool quality = held_out.float_run != nullptr;
  QUANTD_RETURN_IF_ERROR(CheckGeometry(c, w, run.settings.group_size));
  // Nothing queued earlier (a failed layer included) may still use the arena; this also waits
  // for the staged weights.
  QUANTD_RETURN_IF_ERROR(Sync(run.stream, "the staged layer's upload and earlier work"));
  ws->host.Reset();
  QUANTD_RETURN_IF_ERROR(PrepareRope(run, w.index, ws));
  CudaPhaseSeconds& times = GlobalPhaseTotals();
  Lap lap;
  if (!uploaded) QUANTD_RETURN_IF_ERROR(UploadLayer(w, md, run.stream, &ws->layer));
  times.upload += lap.Next();
  DeviceLap device_lap(run.stream);

  // The whole layer is queued with three host synchronisations: after the captured forward and
  // the group statistics (the grid's scale vectors are computed on the host, as the CPU
  // reference does), after the grid losses, and after the packed layer's copies into pinned
  // memory. Token chunks (activations that do not fit): the forward runs chunk by chunk,
  // accumulating the statistics, the Gram matrices and the clip samples, and the trials rerun
  // each chunk's forward from the layer's input (the losses are sums over tokens).
  const int64_t chunk = ChunkTokens(run);
  const std::vector<ScalingGroup> groups = ScalingGroupsOf(c);
  if (c.moe.enabled() && !run.in_place) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "layer ", w.index, ": a sparse MoE layer needs its ", run.tokens,
        " calibration tokens resident on the GPU in one chunk (its experts' statistics are "
        "over their routed tokens), and they do not fit beside the layer; use fewer calibration "
        "tokens or a GPU with more memory"));
  }
  if (c.moe.enabled() && DataParallel(run)) {
    // The per-expert statistics, routing counts and clip samples of a sparse layer are reduced
    // across ranks by the CPU backend only (docs/engine.md, "Multi-GPU").
    return absl::FailedPreconditionError(
        absl::StrCat("gpus: layer ", w.index,
                     " is a sparse MoE layer, and the CUDA backend does not split a "
                     "MoE model's calibration across GPUs (",
                     run.comm->size(), " asked for); run it with gpus 1"));
  }
  if (ws->grams.size() < groups.size()) ws->grams.resize(groups.size());
  std::vector<GroupOnDevice> dgroups = DeviceGroups(groups, run, chunk, ws);
  std::vector<int64_t> first_col(dgroups.size() + 1, 0);  // group i's columns in the layer slots
  for (size_t i = 0; i < dgroups.size(); ++i) first_col[i + 1] = first_col[i] + dgroups[i].cols;
  const int64_t all_cols = first_col.back();
  QUANTD_RETURN_IF_ERROR(Ensure(&ws->sums, 2 * all_cols, sizeof(double)));
  QUANTD_RETURN_IF_ERROR(Ensure(&ws->means, 2 * all_cols, sizeof(float)));
  QUANTD_RETURN_IF_ERROR(Ensure(&ws->scales, kGrid * all_cols, sizeof(float)));
  QUANTD_RETURN_IF_ERROR(
      Ensure(&ws->losses, kGrid * static_cast<int64_t>(dgroups.size()), sizeof(double)));
  double* sums = ws->sums.as<double>();
  QUANTD_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(sums, 0, 2 * all_cols * sizeof(double), run.stream));
  if (DataParallel(run) && run.settings.apply_clip) {
    // Each rank fills the sampled rows it holds; the others stay 0 until the ranks' samples are
    // summed (exact: every row comes from one rank).
    for (int i = 0; i < kClipInputs; ++i) {
      const int64_t n =
          ClipSampleRows(run) * CapturedInputOf(kClipInputNames[i], run, ws->capture).cols;
      QUANTD_RETURN_IF_ERROR(Ensure(&ws->samples[i], n, sizeof(float)));
      QUANTD_CUDA_RETURN_IF_ERROR(
          cudaMemsetAsync(ws->samples[i].f32(), 0, n * sizeof(float), run.stream));
    }
  }
  for (int64_t t0 = 0; t0 < run.tokens; t0 += chunk) {
    const int64_t m = std::min(chunk, run.tokens - t0);
    QUANTD_ASSIGN_OR_RETURN(float* x, ChunkIn(run, t0, m, ws));
    QUANTD_RETURN_IF_ERROR(DecoderLayerForward(*run.gemm, GeometryOf(run, *ws, m), ws->layer, x,
                                               &ws->capture, &ws->scratch, run.stream));
    dgroups = DeviceGroups(groups, run, m, ws);
    for (size_t i = 0; i < dgroups.size(); ++i) {
      const GroupOnDevice& g = dgroups[i];
      if (Unsearched(run, g)) continue;
      AddColumnAbsSums(g.input, g.input_type, g.rows, g.cols, sums + 2 * first_col[i], run.stream);
      if (IsGramGroup(g)) {
        QUANTD_RETURN_IF_ERROR(AccumulateGram(run, g, g.rows, t0 > 0, &ws->grams[i], ws));
      }
    }
    if (run.settings.apply_clip) {
      QUANTD_RETURN_IF_ERROR(GatherClipSamples(run, run.token_offset + t0, m, ws));
    }
    QUANTD_RETURN_IF_ERROR(ChunkOut(run, t0, m, ws));
  }
  DeviceSpans held_out_spans(run.stream), compare_spans(run.stream);
  if (held_out.float_run != nullptr) {  // the float model's held-out states, same weights
    held_out_spans.Start();
    QUANTD_RETURN_IF_ERROR(ForwardResidentLayer(*held_out.float_run, w.index, ws));
    // back to the calibration blocks' tables
    QUANTD_RETURN_IF_ERROR(PrepareRope(run, w.index, ws));
    held_out_spans.Stop();
  }
  if (DataParallel(run)) {  // every rank's column sums and clip samples
    QUANTD_RETURN_IF_ERROR(AllReduceOnDevice(run, sums, 2 * all_cols, "data-parallel sums"));
    for (int i = 0; run.settings.apply_clip && i < kClipInputs; ++i) {
      QUANTD_RETURN_IF_ERROR(AllReduceOnDevice(
          run, ws->samples[i].f32(),
          ClipSampleRows(run) * CapturedInputOf(kClipInputNames[i], run, ws->capture).cols,
          "data-parallel clip samples"));
    }
  }
  for (size_t i = 0; i < dgroups.size(); ++i) {
    if (Unsearched(run, dgroups[i])) continue;
    QUANTD_RETURN_IF_ERROR(FinishGroupStatistics(run, dgroups[i], sums + 2 * first_col[i],
                                                 ws->means.f32() + 2 * first_col[i], ws));
  }
  std::vector<float> means(static_cast<size_t>(2 * all_cols));
  QUANTD_RETURN_IF_ERROR(ws->host.Download(ws->means.as<void>(), means.size() * sizeof(float),
                                           means.data(), run.stream));
  device_lap.Mark();
  QUANTD_RETURN_IF_ERROR(Sync(run.stream, "layer forward and scale statistics"));
  ws->host.FinishDownloads();
  times.forward += lap.Next();
  times.device_forward += device_lap.Next();

  // The host computes group i + 1's grid while the device runs group i's trials.
  double* losses = ws->losses.as<double>();
  QUANTD_CUDA_RETURN_IF_ERROR(
      cudaMemsetAsync(losses, 0, kGrid * dgroups.size() * sizeof(double), run.stream));
  std::vector<std::vector<float>> x_mean(dgroups.size()), w_mean(dgroups.size());
  std::vector<std::vector<std::vector<float>>> grids(dgroups.size());
  std::vector<double> divisor(dgroups.size());
  for (size_t i = 0; i < dgroups.size(); ++i) {
    if (cancel != nullptr && cancel->cancelled()) {
      return absl::CancelledError("quantization cancelled");
    }
    if (Unsearched(run, dgroups[i])) continue;
    const int64_t cols = dgroups[i].cols;
    const float* m = means.data() + 2 * first_col[i];
    x_mean[i].assign(m, m + cols);
    w_mean[i].assign(m + cols, m + 2 * cols);
    grids[i] = GridScales(x_mean[i], w_mean[i], md);
    float* s_dev = ws->scales.f32() + kGrid * first_col[i];
    std::vector<float> grid;  // [kGrid, cols], one copy to the device
    grid.reserve(static_cast<size_t>(kGrid * cols));
    for (const std::vector<float>& v : grids[i]) grid.insert(grid.end(), v.begin(), v.end());
    QUANTD_RETURN_IF_ERROR(
        ws->host.Upload(grid.data(), grid.size() * sizeof(float), s_dev, run.stream));
    if (IsGramGroup(dgroups[i])) {
      QUANTD_ASSIGN_OR_RETURN(
          divisor[i], GramLosses(run, dgroups[i], &ws->grams[i], s_dev, losses + kGrid * i, ws));
    } else if (run.in_place) {  // on the captures of the forward above
      QUANTD_ASSIGN_OR_RETURN(divisor[i], TrialLosses(run, dgroups[i], GeometryOf(run, *ws, chunk),
                                                      s_dev, kGrid, losses + kGrid * i, ws));
    }
  }
  // Not in place: the module-output groups' trials chunk by chunk, each chunk's forward rerun.
  for (int64_t t0 = 0; !run.in_place && t0 < run.tokens; t0 += chunk) {
    const int64_t m = std::min(chunk, run.tokens - t0);
    const LayerGeometry geo = GeometryOf(run, *ws, m);
    QUANTD_ASSIGN_OR_RETURN(float* x, ChunkIn(run, t0, m, ws));
    QUANTD_RETURN_IF_ERROR(
        DecoderLayerForward(*run.gemm, geo, ws->layer, x, &ws->capture, &ws->scratch, run.stream));
    dgroups = DeviceGroups(groups, run, m, ws);
    for (size_t i = 0; i < dgroups.size(); ++i) {
      if (cancel != nullptr && cancel->cancelled()) {
        return absl::CancelledError("quantization cancelled");
      }
      if (IsGramGroup(dgroups[i])) continue;
      const float* s_dev = ws->scales.f32() + kGrid * first_col[i];
      QUANTD_ASSIGN_OR_RETURN(
          divisor[i], TrialLosses(run, dgroups[i], geo, s_dev, kGrid, losses + kGrid * i, ws));
    }
  }
  std::vector<double> loss_sums(kGrid * dgroups.size());
  QUANTD_RETURN_IF_ERROR(
      ws->host.Download(losses, loss_sums.size() * sizeof(double), loss_sums.data(), run.stream));
  device_lap.Mark();
  QUANTD_RETURN_IF_ERROR(Sync(run.stream, "scale search"));
  ws->host.FinishDownloads();
  // Every rank's loss sums (the divisors count all ranks' tokens).
  if (DataParallel(run)) QUANTD_RETURN_IF_ERROR(run.comm->AllReduceSum(absl::MakeSpan(loss_sums)));

  QuantizedLayer out;
  std::vector<const float*> chosen(dgroups.size());  // the chosen scale vectors on the device
  for (size_t i = 0; i < dgroups.size(); ++i) {
    if (Unsearched(run, dgroups[i])) {  // identity scales, nothing folded (chosen[i] null)
      out.scaling.push_back(UnsearchedDecision(groups[i], dgroups[i].cols));
      continue;
    }
    std::vector<double> group_losses(loss_sums.begin() + kGrid * i,
                                     loss_sums.begin() + kGrid * i + kGrid);
    for (double& v : group_losses) v /= divisor[i];
    absl::StatusOr<ScaleSearchResult> best =
        PickBestScale(std::move(grids[i]), std::move(group_losses));
    if (!best.ok()) {
      return absl::Status(best.status().code(),
                          absl::StrCat(groups[i].label, ": ", best.status().message()));
    }
    chosen[i] = ws->scales.f32() + kGrid * first_col[i] + best->best_index * dgroups[i].cols;
    ScalingDecision d;
    d.label = groups[i].label;
    d.ratio_index = best->best_index;
    d.ratio = best->best_ratio;
    d.loss = best->best_loss;
    d.losses = std::move(best->losses);
    d.scales = std::move(best->scales);
    d.x_mean = std::move(x_mean[i]);
    d.w_mean = std::move(w_mean[i]);
    out.scaling.push_back(std::move(d));
  }
  times.scale_search += lap.Next();
  times.device_scale_search += device_lap.Next();

  // The quality report's comparison of every group: round-to-nearest (scale vector 1) and the
  // chosen scales, on the quality slice (the first blocks; not in place, of the first chunk, whose
  // forward is redone for its captures), on the original weights. A sparse layer (always in
  // place) compares on every token: its routing covers them all.
  const int64_t slice = c.moe.enabled()
                            ? run.tokens
                            : std::min(QualitySliceBlocks(run.tokens / run.len) * run.len, chunk);
  QUANTD_RETURN_IF_ERROR(
      Ensure(&ws->quality_losses, 2 * static_cast<int64_t>(dgroups.size()), sizeof(double)));
  QUANTD_RETURN_IF_ERROR(Ensure(&ws->quality_scales, 2 * all_cols, sizeof(float)));
  double* quality_dev = ws->quality_losses.as<double>();
  QUANTD_CUDA_RETURN_IF_ERROR(
      cudaMemsetAsync(quality_dev, 0, 2 * dgroups.size() * sizeof(double), run.stream));
  if (quality) compare_spans.Start();
  if (quality && !run.in_place) {
    const int64_t m = std::min(chunk, run.tokens);
    QUANTD_ASSIGN_OR_RETURN(float* x, ChunkIn(run, 0, m, ws));
    QUANTD_RETURN_IF_ERROR(DecoderLayerForward(*run.gemm, GeometryOf(run, *ws, m), ws->layer, x,
                                               &ws->capture, &ws->scratch, run.stream));
    dgroups = DeviceGroups(groups, run, m, ws);
  }
  std::vector<double> quality_divisor(dgroups.size());
  std::vector<int64_t> compare_tokens(dgroups.size(), 0);  // 0: not compared (not searched)
  for (size_t i = 0; quality && i < dgroups.size(); ++i) {
    if (Unsearched(run, dgroups[i]) || dgroups[i].rows == 0) continue;
    const int64_t cols = dgroups[i].cols;
    std::vector<float> pair(static_cast<size_t>(cols), 1.0f);
    pair.insert(pair.end(), out.scaling[i].scales.begin(), out.scaling[i].scales.end());
    float* s_dev = ws->quality_scales.f32() + 2 * first_col[i];
    QUANTD_RETURN_IF_ERROR(
        ws->host.Upload(pair.data(), pair.size() * sizeof(float), s_dev, run.stream));
    if (IsGramGroup(dgroups[i])) {
      // A routed expert's down_proj sees only its tokens: the first of them.
      const int64_t rows = std::min(slice, dgroups[i].rows);
      QUANTD_ASSIGN_OR_RETURN(quality_divisor[i], LinearSliceLosses(run, dgroups[i], rows, s_dev, 2,
                                                                    quality_dev + 2 * i, ws));
      compare_tokens[i] = rows;
    } else {
      QUANTD_RETURN_IF_ERROR(TrialLosses(run, dgroups[i], GeometryOf(run, *ws, slice), s_dev, 2,
                                         quality_dev + 2 * i, ws)
                                 .status());
      quality_divisor[i] = static_cast<double>(slice) * static_cast<double>(c.hidden_size);
      compare_tokens[i] = slice;
    }
  }
  if (quality) compare_spans.Stop();
  std::vector<double> quality_sums(2 * dgroups.size());
  QUANTD_RETURN_IF_ERROR(ws->host.Download(quality_dev, quality_sums.size() * sizeof(double),
                                           quality_sums.data(), run.stream));

  for (size_t i = 0; i < dgroups.size(); ++i) {
    if (chosen[i] != nullptr) QUANTD_RETURN_IF_ERROR(ApplyScales(run, dgroups[i], chosen[i], ws));
  }
  if (run.settings.apply_clip) {
    if (cancel != nullptr && cancel->cancelled()) {
      return absl::CancelledError("quantization cancelled");
    }
    QUANTD_RETURN_IF_ERROR(ClipLinears(run, groups, chosen, ws, &out.clips));
  }
  if (c.moe.enabled())
    out.moe = RoutingStats(ws->capture.moe.routing, run.settings.min_expert_tokens);
  const std::vector<LinearSpec> specs = LayerLinears(c);
  std::vector<std::vector<float>> biases(specs.size());
  out.index = w.index;
  out.linears.reserve(specs.size());
  const bool quantized_forward = held_out.quantized_run != nullptr;
  for (size_t i = 0; i < specs.size(); ++i) {
    QUANTD_ASSIGN_OR_RETURN(
        GemmPackedLinear p,
        QuantizeAndPack(run, *ws->layer.linear(specs[i].name), quantized_forward, ws, &biases[i]));
    out.linears.push_back({specs[i].name, std::move(p)});
  }
  // The norms as scaled on the device; q/k norms (never scaled) come from the host copy.
  for (const LayerTensorSpec& t : LayerFloatTensors(c)) {
    if (t.name == kQNorm || t.name == kKNorm) {
      out.floats.push_back({t.name, std::move(*FindFloatTensor(&w, t.name))});
      continue;
    }
    QUANTD_ASSIGN_OR_RETURN(
        Tensor v, DownloadTensor(*ws->layer.norm(t.name), t.shape, run.stream, &ws->host));
    out.floats.push_back({t.name, std::move(v)});
  }
  if (quantized_forward) {  // the quantized model's held-out states, on the dequantized layer
    held_out_spans.Start();
    QUANTD_RETURN_IF_ERROR(
        PrepareQuantizedLayer(c, held_out.quantized_run->settings.md, run.stream, &ws->layer));
    QUANTD_RETURN_IF_ERROR(ForwardResidentLayer(*held_out.quantized_run, w.index, ws));
    held_out_spans.Stop();
  }
  device_lap.Mark();
  QUANTD_RETURN_IF_ERROR(Sync(run.stream, "scale folding, clip search, quantize and pack"));
  ws->host.FinishDownloads();
  for (size_t i = 0; i < specs.size(); ++i) {
    if (biases[i].empty()) continue;
    std::vector<uint16_t> b(biases[i].size());
    for (size_t j = 0; j < b.size(); ++j) b[j] = ToHalfBits(run.settings.scale_dtype, biases[i][j]);
    out.linears[i].packed.bias = std::move(b);
  }
  times.device_held_out += held_out_spans.Seconds();
  times.device_compare += compare_spans.Seconds();
  for (size_t i = 0; quality && i < dgroups.size(); ++i) {
    if (compare_tokens[i] == 0) continue;
    out.scaling[i].rtn_loss = quality_sums[2 * i] / quality_divisor[i];
    out.scaling[i].awq_loss = quality_sums[2 * i + 1] / quality_divisor[i];
    out.scaling[i].compare_tokens = compare_tokens[i];
  }
  times.finish += lap.Next();
  times.device_finish += device_lap.Next();
  return out;
}

absl::Status ForwardLayerOnDevice(const AwqLayerRun& run, const LayerWeights& weights,
                                  AwqWorkspace* ws) {
  QUANTD_RETURN_IF_ERROR(CheckCudaSupports(*run.config));
  QUANTD_RETURN_IF_ERROR(UploadLayer(weights, run.settings.md, run.stream, &ws->layer));
  QUANTD_RETURN_IF_ERROR(ForwardResidentLayer(run, weights.index, ws));
  return Sync(run.stream, "layer forward");
}

absl::StatusOr<double> NextTokenNllOnDevice(const AwqLayerRun& run, const Tensor& final_norm,
                                            const Tensor& lm_head,
                                            const std::vector<std::vector<int32_t>>& targets,
                                            AwqWorkspace* ws) {
  const DType md = run.settings.md;
  const int64_t h = run.config->hidden_size;
  const int64_t vocab = lm_head.dim(0);
  const int64_t len = run.len;
  const int64_t blocks = run.tokens / len;
  if (static_cast<int64_t>(targets.size()) != blocks) {
    return absl::InvalidArgumentError(
        absl::StrCat("targets: expected ", blocks, " blocks, got ", targets.size()));
  }
  std::vector<int32_t> flat;
  flat.reserve(static_cast<size_t>(run.tokens));
  for (const auto& row : targets) {
    if (static_cast<int64_t>(row.size()) != len) {
      return absl::InvalidArgumentError(
          absl::StrCat("targets: every block needs ", len, " targets, got ", row.size()));
    }
    for (int32_t t : row) {
      if (t < 0 || t >= vocab) {
        return absl::InvalidArgumentError(
            absl::StrCat("target token ", t, " is outside the vocabulary of ", vocab));
      }
      flat.push_back(t);
    }
  }
  QUANTD_RETURN_IF_ERROR(
      Upload(flat.data(), flat.size() * sizeof(int32_t), &ws->targets, run.stream));
  DeviceBuffer norm;
  QUANTD_RETURN_IF_ERROR(
      Upload(final_norm.ptr(), final_norm.data.size() * sizeof(float), &norm, run.stream));
  // lm_head in md for the GEMM (staged through the logits buffer as float32). The pipeline scores
  // the float and the quantized model with the same host tensor: it is uploaded once.
  if (ws->lm_head_source != lm_head.ptr() || ws->lm_head_elements != lm_head.numel()) {
    ws->lm_head_source = nullptr;
    QUANTD_RETURN_IF_ERROR(
        Upload(lm_head.ptr(), lm_head.data.size() * sizeof(float), &ws->logits, run.stream));
    ws->lm_head_source = lm_head.ptr();
    ws->lm_head_elements = lm_head.numel();
  }
  const void* head_op = ws->logits.as<void>();
  if (md != DType::kF32) {
    QUANTD_RETURN_IF_ERROR(Ensure(&ws->lm_head, vocab * h, DTypeSize(md)));
    ToOperand(ws->logits.f32(), ws->lm_head.as<void>(), vocab * h, md, run.stream);
    head_op = ws->lm_head.as<void>();
  } else {
    QUANTD_RETURN_IF_ERROR(
        Upload(lm_head.ptr(), lm_head.data.size() * sizeof(float), &ws->lm_head, run.stream));
    head_op = ws->lm_head.as<void>();
  }
  // Blocks per chunk so that the logits stay under about 1 GiB.
  const int64_t per_block = len * vocab * static_cast<int64_t>(sizeof(float));
  const int64_t chunk = std::max<int64_t>(1, (int64_t{1} << 30) / per_block);
  DeviceBuffer acc;
  QUANTD_RETURN_IF_ERROR(acc.Reserve(sizeof(double)));
  QUANTD_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(acc.as<void>(), 0, sizeof(double), run.stream));
  ForwardScratch& s = ws->scratch;
  const int64_t per_chunk = ChunkTokens(run) / len;  // blocks per hidden-state chunk
  const float* hidden = nullptr;                     // the chunk holding block b0
  int64_t hidden_b0 = 0;                             // its first block
  for (int64_t b0 = 0, nb = 0; b0 < blocks; b0 += nb) {
    if (b0 % per_chunk == 0) {
      QUANTD_ASSIGN_OR_RETURN(hidden,
                              ChunkIn(run, b0 * len, std::min(per_chunk, blocks - b0) * len, ws));
      hidden_b0 = b0;
    }
    nb = std::min({chunk, blocks - b0, per_chunk - b0 % per_chunk});
    const int64_t rows = nb * len;
    QUANTD_RETURN_IF_ERROR(Ensure(&s.residual_norm, rows * h, sizeof(float)));
    QUANTD_RETURN_IF_ERROR(Ensure(&s.x_op, rows * h, DTypeSize(md)));
    QUANTD_RETURN_IF_ERROR(Ensure(&ws->out, rows * vocab, sizeof(float)));
    RmsNorm(hidden + (b0 - hidden_b0) * len * h, norm.f32(), s.residual_norm.f32(), rows, h,
            static_cast<float>(run.config->rms_norm_eps), md,
            run.config->norm == NormKind::kRmsOnePlusWeight, run.stream);
    const void* x_op = s.residual_norm.f32();
    if (md != DType::kF32) {
      ToOperand(s.residual_norm.f32(), s.x_op.as<void>(), rows * h, md, run.stream);
      x_op = s.x_op.as<void>();
    }
    QUANTD_RETURN_IF_ERROR(run.gemm->Linear(x_op, head_op, ws->out.f32(), rows, vocab, h, md));
    BiasRound(ws->out.f32(), nullptr, rows, vocab, md, run.stream);
    if (run.config->final_logit_softcapping > 0) {
      SoftCap(ws->out.f32(), rows * vocab, static_cast<float>(run.config->final_logit_softcapping),
              md, run.stream);
    }
    AddNll(ws->out.f32(), ws->targets.as<int32_t>() + b0 * len, rows, vocab, acc.as<double>(),
           run.stream);
  }
  double nll = 0.0;
  QUANTD_RETURN_IF_ERROR(Download(acc, &nll, sizeof(double), run.stream));
  QUANTD_RETURN_IF_ERROR(Sync(run.stream, "next-token NLL"));
  return nll;
}

}  // namespace quantd::engine::cuda
