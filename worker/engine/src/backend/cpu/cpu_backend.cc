#include "backend/cpu/cpu_backend.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "awq/apply_scale.h"
#include "awq/clip_search.h"
#include "awq/quantize_linear.h"
#include "awq/scale_search.h"
#include "awq/scaling_groups.h"
#include "backend/cpu/decoder_layer.h"
#include "core/matmul.h"
#include "io/status_macros.h"
#include "parallel/sharded_statistics.h"

namespace quantd::engine {
namespace {

LayerContext MakeContext(const ModelConfig& config, DType md, int64_t len) {
  return LayerContext{&config, md, len, MakeRopeTable(config, len, md)};
}

// The cached input of a group's Linears (AutoAWQ's input_feat entry).
const Tensor& GroupInput(ScalingGroupKind kind, const LayerCapture& cap) {
  switch (kind) {
    case ScalingGroupKind::kAttentionInput:
      return cap.attn_input;
    case ScalingGroupKind::kValueOutput:
      return cap.o_input;
    case ScalingGroupKind::kMlpInput:
      return cap.mlp_input;
    case ScalingGroupKind::kMlpDown:
      return cap.down_input;
  }
  return cap.attn_input;
}

// Loss of one trial scale vector for a group: rerun the inspected module with Q(W·s)/s.
class TrialLoss {
 public:
  TrialLoss(const LayerContext& ctx, const LayerQuantSettings& settings, const LayerWeights& layer,
            const LayerCapture& cap, ScalingGroupKind kind)
      : ctx_(ctx), settings_(settings), layer_(layer), cap_(cap), kind_(kind) {
    if (kind == ScalingGroupKind::kValueOutput || kind == ScalingGroupKind::kMlpDown) {
      // The inspected module is the Linear itself: the output MSE is a quadratic form in xᵀx.
      const Tensor& x = GroupInput(kind, cap);
      gram_.resize(static_cast<size_t>(x.dim(1) * x.dim(1)));
      Gram(x.ptr(), x.dim(0), x.dim(1), x.dim(1), gram_.data());
    }
  }

  double operator()(const std::vector<float>& s) const {
    std::vector<LinearWeights> trial;
    for (const LinearWeights* l : GroupLinears(kind_, layer_)) {
      LinearWeights t{Tensor(), l->bias};
      ScaleQuantizeUnscale(l->weight, s, settings_.group_size, ctx_.md, &t.weight);
      trial.push_back(std::move(t));
    }
    switch (kind_) {
      case ScalingGroupKind::kAttentionInput: {
        const bool float_kv = settings_.attention_trials_use_float_kv;
        Tensor out = SelfAttention(ctx_, trial[0], float_kv ? layer_.k_proj : trial[1],
                                   float_kv ? layer_.v_proj : trial[2], layer_.o_proj, layer_,
                                   cap_.attn_input, nullptr);
        return OutputMse(cap_.attn_output, out, ctx_.md);
      }
      case ScalingGroupKind::kMlpInput: {
        Tensor out = Mlp(ctx_, trial[0], trial[1], layer_.down_proj, cap_.mlp_input, nullptr);
        return OutputMse(cap_.mlp_output, out, ctx_.md);
      }
      case ScalingGroupKind::kValueOutput:
        return LinearOutputMse(gram_, layer_.o_proj.weight, trial[0].weight, cap_.o_input.dim(0));
      case ScalingGroupKind::kMlpDown:
        return LinearOutputMse(gram_, layer_.down_proj.weight, trial[0].weight,
                               cap_.down_input.dim(0));
    }
    return 0.0;
  }

 private:
  const LayerContext& ctx_;
  const LayerQuantSettings& settings_;
  const LayerWeights& layer_;
  const LayerCapture& cap_;
  ScalingGroupKind kind_;
  std::vector<float> gram_;
};

absl::Status CheckCancel(const CancellationToken* cancel) {
  if (cancel != nullptr && cancel->cancelled())
    return absl::CancelledError("quantization cancelled");
  return absl::OkStatus();
}

// AutoAWQ clips every Linear except q/k projections — o_proj too when no scaling group feeds it
// (GQA) — on the scaled weights, with its cached input divided by the scales of the group that
// scaled that input. Dividing the sampled tokens equals sampling the divided cache.
// Data-parallel ranks sample all ranks' rows (ShardedClipTokens) and so search the same clips.
absl::Status ClipLinears(Communicator* comm, const RowShard& shard,
                         const std::vector<ScalingGroup>& groups,
                         const std::vector<ScalingDecision>& scaling, const LayerCapture& cap,
                         DType md, int64_t group_size, LayerWeights* w,
                         std::vector<ClipDecision>* clips) {
  struct Target {
    const char* name;
    LinearWeights* linear;
    ScalingGroupKind input_group;
  };
  const Target targets[] = {{"self_attn.v_proj", &w->v_proj, ScalingGroupKind::kAttentionInput},
                            {"self_attn.o_proj", &w->o_proj, ScalingGroupKind::kValueOutput},
                            {"mlp.gate_proj", &w->gate_proj, ScalingGroupKind::kMlpInput},
                            {"mlp.up_proj", &w->up_proj, ScalingGroupKind::kMlpInput},
                            {"mlp.down_proj", &w->down_proj, ScalingGroupKind::kMlpDown}};
  for (const Target& t : targets) {
    QUANTD_ASSIGN_OR_RETURN(Tensor sampled,
                            ShardedClipTokens(comm, shard, GroupInput(t.input_group, cap)));
    for (size_t i = 0; i < groups.size(); ++i) {
      if (groups[i].kind == t.input_group) DivideInputs(scaling[i].scales, md, &sampled);
    }
    ClipResult r = SearchBestClip(t.linear->weight, sampled, group_size, md);
    ApplyClip(r.max_val, group_size, &t.linear->weight);
    clips->push_back({t.name, std::move(r.max_val), std::move(r.shrink_index)});
  }
  return absl::OkStatus();
}

class CpuBackend : public Backend {
 public:
  explicit CpuBackend(Communicator* comm) : comm_(comm) {}

  std::string_view name() const override { return "cpu"; }

  absl::StatusOr<std::unique_ptr<Activations>> Embed(
      const Tensor& embedding, const std::vector<std::vector<int32_t>>& blocks) override {
    absl::StatusOr<int64_t> len = UniformBlockLength(blocks);
    if (!len.ok()) return len.status();
    const int64_t hidden = embedding.dim(1);
    Tensor h({static_cast<int64_t>(blocks.size()) * *len, hidden});
    for (size_t b = 0; b < blocks.size(); ++b) {
      absl::Status s = GatherEmbeddingRows(embedding, blocks[b],
                                           h.ptr() + static_cast<int64_t>(b) * *len * hidden);
      if (!s.ok()) return s;
    }
    return std::make_unique<CpuActivations>(std::move(h), static_cast<int64_t>(blocks.size()),
                                            *len);
  }

  absl::StatusOr<QuantizedLayer> QuantizeLayer(const ModelConfig& config,
                                               const LayerQuantSettings& settings, LayerWeights w,
                                               Activations* hidden,
                                               const CancellationToken* cancel) override {
    auto* act = static_cast<CpuActivations*>(hidden);
    const DType md = settings.md;
    const int64_t gs = settings.group_size;
    const LayerContext ctx = MakeContext(config, md, act->block_len());
    LayerCapture cap;
    ForwardDecoderLayer(ctx, w, &act->hidden(), &cap);
    // This rank's calibration rows among all data-parallel ranks' (all of them on one rank).
    QUANTD_ASSIGN_OR_RETURN(const RowShard shard, ShardRows(comm_, act->hidden().dim(0)));

    QuantizedLayer out;
    const std::vector<ScalingGroup> groups = ScalingGroupsOf(w);
    for (const ScalingGroup& group : groups) {
      if (absl::Status s = CheckCancel(cancel); !s.ok()) return s;
      std::vector<const Tensor*> ws;
      for (const LinearWeights* l : GroupLinears(group.kind, std::as_const(w))) {
        ws.push_back(&l->weight);
      }
      const std::vector<float> w_mean = WeightMean(ws, gs, md);
      QUANTD_ASSIGN_OR_RETURN(const std::vector<float> x_mean,
                              ShardedInputMean(comm_, shard, GroupInput(group.kind, cap), md));
      const TrialLoss loss(ctx, settings, w, cap, group.kind);
      // Every grid point's loss over this rank's rows, then over all ranks' rows.
      std::vector<std::vector<float>> grid = GridScales(x_mean, w_mean, md);
      std::vector<double> losses;
      for (const std::vector<float>& s : grid) losses.push_back(loss(s));
      QUANTD_RETURN_IF_ERROR(ReduceRowMeans(comm_, shard, &losses));
      absl::StatusOr<ScaleSearchResult> best = PickBestScale(std::move(grid), std::move(losses));
      if (!best.ok()) {
        return absl::Status(best.status().code(),
                            absl::StrCat(GroupLabel(group), ": ", best.status().message()));
      }
      out.scaling.push_back({GroupLabel(group), best->best_index, best->best_ratio, best->best_loss,
                             best->losses, best->scales, x_mean, w_mean});
    }
    // Apply all scales in group order (each search above saw the original weights).
    for (size_t i = 0; i < groups.size(); ++i) {
      ApplyGroupScales(groups[i].kind, out.scaling[i].scales, md, &w);
    }
    if (settings.apply_clip) {
      if (absl::Status s = CheckCancel(cancel); !s.ok()) return s;
      QUANTD_RETURN_IF_ERROR(
          ClipLinears(comm_, shard, groups, out.scaling, cap, md, gs, &w, &out.clips));
    }
    for (const char* name : kLayerLinearNames) {
      out.linears.push_back({name, QuantizeLinearGemm(*LinearByName(&w, name), gs)});
    }
    out.input_layernorm = std::move(w.input_layernorm);
    out.post_attention_layernorm = std::move(w.post_attention_layernorm);
    out.q_norm = std::move(w.q_norm);
    out.k_norm = std::move(w.k_norm);
    return out;
  }

  absl::Status ForwardLayer(const ModelConfig& config, DType md, const LayerWeights& weights,
                            Activations* hidden) override {
    auto* act = static_cast<CpuActivations*>(hidden);
    ForwardDecoderLayer(MakeContext(config, md, act->block_len()), weights, &act->hidden(),
                        nullptr);
    return absl::OkStatus();
  }

  absl::StatusOr<double> NextTokenNll(const ModelConfig& config, DType md, const Tensor& final_norm,
                                      const Tensor& lm_head, const Activations& hidden,
                                      const std::vector<std::vector<int32_t>>& targets) override {
    const auto& act = static_cast<const CpuActivations&>(hidden);
    const int64_t len = act.block_len();
    const int64_t h = act.hidden().dim(1);
    const int64_t vocab = lm_head.dim(0);
    double nll = 0.0;
    // One block at a time keeps the logits at len × vocab.
    for (int64_t b = 0; b < act.num_blocks(); ++b) {
      Tensor rows({len, h});
      std::copy_n(act.hidden().ptr() + b * len * h, len * h, rows.ptr());
      const Tensor logits = CpuLogits(config, md, final_norm, lm_head, rows);
      for (int64_t t = 0; t < len; ++t) {
        const float* z = logits.ptr() + t * vocab;
        const float mx = *std::max_element(z, z + vocab);
        double sum = 0.0;
        for (int64_t j = 0; j < vocab; ++j) sum += std::exp(z[j] - mx);
        const int32_t target = targets[static_cast<size_t>(b)][static_cast<size_t>(t)];
        nll += std::log(sum) + mx - z[target];
      }
    }
    return nll;
  }

 private:
  Communicator* comm_;  // null: one rank

  static LinearWeights* LinearByName(LayerWeights* w, const std::string& name) {
    LinearWeights* all[] = {&w->q_proj,    &w->k_proj,  &w->v_proj,   &w->o_proj,
                            &w->gate_proj, &w->up_proj, &w->down_proj};
    for (size_t i = 0; i < 7; ++i) {
      if (name == kLayerLinearNames[i]) return all[i];
    }
    return nullptr;
  }
};

}  // namespace

std::unique_ptr<Backend> CreateCpuBackend(Communicator* comm) {
  return std::make_unique<CpuBackend>(comm);
}

Tensor CpuLogits(const ModelConfig& config, DType md, const Tensor& final_norm,
                 const Tensor& lm_head, const Tensor& hidden) {
  const Tensor normed = RmsNorm(hidden, final_norm, static_cast<float>(config.rms_norm_eps), md);
  return Linear(normed, LinearWeights{lm_head, std::nullopt}, md);
}

}  // namespace quantd::engine
