#include "backend/cpu/cpu_backend.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "awq/apply_scale.h"
#include "awq/clip_search.h"
#include "awq/quantize_linear.h"
#include "awq/scale_search.h"
#include "awq/scaling_groups.h"
#include "backend/cpu/capture_shards.h"
#include "backend/cpu/decoder_layer.h"
#include "io/status_macros.h"
#include "model/architecture.h"
#include "model/moe_layout.h"
#include "parallel/sharded_statistics.h"

namespace quantd::engine {
namespace {

// Loss of one trial scale vector for a group: rerun the inspected module with Q(W·s)/s.
class TrialLoss {
 public:
  TrialLoss(const LayerContext& ctx, const LayerQuantSettings& settings, const LayerWeights& layer,
            const LayerCapture& cap, const ScalingGroup& group)
      : ctx_(ctx), settings_(settings), layer_(layer), cap_(cap), group_(group) {
    if (group.inspect == InspectedModule::kLinear) {
      linear_mse_.emplace(*CapturedInput(cap, group.input));
    }
  }

  double operator()(const std::vector<float>& s) const {
    const std::vector<const LinearWeights*> linears = GroupLinears(group_, layer_);
    std::vector<LinearWeights>& trial = trial_;
    trial.resize(linears.size());
    for (size_t i = 0; i < linears.size(); ++i) {
      trial[i].bias = linears[i]->bias;
      ScaleQuantizeUnscale(linears[i]->weight, s, settings_.scheme(), ctx_.md, &trial[i].weight);
    }
    // A Linear of the layer, or its trial where the group has one.
    auto pick = [&](std::string_view name) -> const LinearWeights& {
      for (size_t i = 0; i < group_.linears.size(); ++i) {
        if (group_.linears[i] == name) return trial[i];
      }
      return *FindLinear(layer_, name);
    };
    switch (group_.inspect) {
      case InspectedModule::kSelfAttention: {
        const bool float_kv = settings_.attention_trials_use_float_kv;
        Tensor out = SelfAttention(ctx_, pick(kQProj), float_kv ? layer_.k_proj : pick(kKProj),
                                   float_kv ? layer_.v_proj : pick(kVProj), pick(kOProj), layer_,
                                   cap_.attn_input, nullptr);
        return OutputMse(cap_.attn_output, out, ctx_.md);
      }
      case InspectedModule::kMlp: {
        Tensor out =
            Mlp(ctx_, pick(kGateProj), pick(kUpProj), pick(kDownProj), cap_.mlp_input, nullptr);
        return OutputMse(cap_.mlp_output, out, ctx_.md);
      }
      case InspectedModule::kLinear:
        return (*linear_mse_)(FindLinear(layer_, group_.linears[0])->weight, trial[0].weight);
      case InspectedModule::kMoe: {
        // The whole block on the same input with the float routing: AutoAWQ reruns the block, whose
        // router (not in the group) sees the same input and routes the same way.
        MoeView view = ViewOf(*layer_.moe);
        const MoeStyle style = ctx_.config->moe.style;
        for (size_t e = 0; e < view.experts.size(); ++e) {
          const int ei = static_cast<int>(e);
          view.experts[e].gate = &pick(ExpertLinearName(style, ei, ExpertProj::kGate));
          view.experts[e].up = &pick(ExpertLinearName(style, ei, ExpertProj::kUp));
        }
        if (view.shared_expert.has_value()) {
          view.shared_expert->gate = &pick(SharedExpertLinearName(ExpertProj::kGate));
          view.shared_expert->up = &pick(SharedExpertLinearName(ExpertProj::kUp));
        }
        Tensor out = MoeBlockForward(view, cap_.moe->routing, cap_.mlp_input, ctx_.md, nullptr);
        return OutputMse(cap_.mlp_output, out, ctx_.md);
      }
    }
    return 0.0;
  }

 private:
  const LayerContext& ctx_;
  const LayerQuantSettings& settings_;
  const LayerWeights& layer_;
  const LayerCapture& cap_;
  const ScalingGroup& group_;
  std::optional<LinearOutputMse> linear_mse_;  // kLinear groups
  // The trial weights, kept between calls: a fresh 7B MLP's worth of trials per grid point made the
  // allocator map and fault in gigabytes each time.
  mutable std::vector<LinearWeights> trial_;
};

// The first `rows` rows of t (all of them when it has fewer).
Tensor FirstRows(const Tensor& t, int64_t rows) {
  rows = std::min(rows, t.dim(0));
  Tensor out({rows, t.dim(1)});
  std::copy_n(t.ptr(), rows * t.dim(1), out.ptr());
  return out;
}

// The captured module inputs and outputs of the quality slice (the first blocks) of a dense
// layer. A sparse layer's capture is not sliced (its routing indexes every token): its groups
// are compared on all calibration tokens.
LayerCapture QualitySlice(const LayerCapture& cap, int64_t rows) {
  LayerCapture s;
  s.attn_input = FirstRows(cap.attn_input, rows);
  s.attn_output = FirstRows(cap.attn_output, rows);
  s.mlp_input = FirstRows(cap.mlp_input, rows);
  s.mlp_output = FirstRows(cap.mlp_output, rows);
  s.o_input = FirstRows(cap.o_input, rows);
  s.down_input = FirstRows(cap.down_input, rows);
  return s;
}

// A routed expert's Linear whose expert saw fewer than `min_tokens` calibration tokens (over all
// data-parallel ranks): its statistics are noise, so it keeps identity scales and no clip
// (docs/moe.md).
bool UnderCalibrated(const CaptureShards& shards, std::string_view linear, int64_t min_tokens) {
  if (!ExpertOfLinear(linear).has_value()) return false;
  const int64_t rows = shards.ForLinear(linear).total;
  return rows == 0 || rows < min_tokens;
}

absl::Status CheckCancel(const CancellationToken* cancel) {
  if (cancel != nullptr && cancel->cancelled())
    return absl::CancelledError("quantization cancelled");
  return absl::OkStatus();
}

// AutoAWQ clips every Linear whose name passes AutoAwqClips (not q/k) — o_proj too when no
// scaling group feeds it (GQA) — on the scaled weights, with its cached input divided by the scales
// of the group that scaled that input. Dividing the sampled tokens equals sampling the divided
// cache. Data-parallel ranks sample all ranks' rows (ShardedClipTokens) and so search the same
// clips.
absl::Status ClipLinears(const ModelConfig& config, Communicator* comm, const CaptureShards& shards,
                         const std::vector<ScalingGroup>& groups,
                         const std::vector<ScalingDecision>& scaling, const LayerCapture& cap,
                         DType md, const QuantScheme& scheme, int64_t min_expert_tokens,
                         LayerWeights* w, std::vector<ClipDecision>* clips) {
  for (const LinearSpec& spec : LayerLinears(config)) {
    if (!spec.clip || UnderCalibrated(shards, spec.name, min_expert_tokens)) continue;
    QUANTD_ASSIGN_OR_RETURN(Tensor sampled, ShardedClipTokens(comm, shards.ForLinear(spec.name),
                                                              *CapturedInput(cap, spec.name)));
    for (size_t i = 0; i < groups.size(); ++i) {
      if (GroupScalesInputOf(groups[i], spec.name)) {
        DivideInputs(scaling[i].scales, md, &sampled);
      }
    }
    LinearWeights* linear = FindLinear(w, spec.name);
    ClipResult r = SearchBestClip(linear->weight, sampled, scheme, md);
    ApplyClip(r.max_val, scheme.GroupFor(linear->in_features()), &linear->weight);
    clips->push_back({spec.name, std::move(r.max_val), std::move(r.shrink_index)});
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
    const QuantScheme scheme = settings.scheme();
    const LayerContext ctx = MakeLayerContext(config, w.index, md, act->block_len());
    LayerCapture cap;
    ForwardDecoderLayer(ctx, w, &act->hidden(), &cap);
    if (cap.moe.has_value()) ShapeEmptyExpertInputs(*w.moe, &*cap.moe);
    // Where this rank's rows of every captured input lie among all data-parallel ranks' (all of
    // them on one rank).
    QUANTD_ASSIGN_OR_RETURN(const CaptureShards shards,
                            CaptureShards::Gather(comm_, cap, act->hidden().dim(0)));
    if (held_out().float_hidden != nullptr) {
      auto* h = static_cast<CpuActivations*>(held_out().float_hidden);
      ForwardDecoderLayer(MakeLayerContext(config, w.index, md, h->block_len()), w, &h->hidden(),
                          nullptr);
    }
    const bool quality = held_out().float_hidden != nullptr;
    const bool sliced = quality && !cap.moe.has_value();
    const int64_t slice_rows =
        sliced ? QualitySliceBlocks(act->num_blocks()) * act->block_len() : act->hidden().dim(0);
    const LayerCapture slice = sliced ? QualitySlice(cap, slice_rows) : LayerCapture{};
    const LayerCapture& compared = sliced ? slice : cap;

    QuantizedLayer out;
    out.index = w.index;
    const std::vector<ScalingGroup> groups = ScalingGroupsOf(config);
    for (const ScalingGroup& group : groups) {
      if (absl::Status s = CheckCancel(cancel); !s.ok()) return s;
      if (UnderCalibrated(shards, group.input, settings.min_expert_tokens)) {
        out.scaling.push_back(
            UnsearchedDecision(group, FindLinear(w, group.linears[0])->in_features()));
        continue;
      }
      std::vector<const Tensor*> ws;
      for (const LinearWeights* l : GroupLinears(group, std::as_const(w))) {
        ws.push_back(&l->weight);
      }
      const std::vector<float> w_mean = WeightMean(ws, scheme.GroupFor(ws.front()->dim(1)), md);
      const RowShard& shard = shards.ForLinear(group.input);
      QUANTD_ASSIGN_OR_RETURN(const std::vector<float> x_mean,
                              ShardedInputMean(comm_, shard, *CapturedInput(cap, group.input), md));
      // Every grid point's loss over this rank's rows, then over all ranks' rows (a rank that
      // holds none of an expert's rows adds nothing).
      std::vector<std::vector<float>> grid = GridScales(x_mean, w_mean, md);
      std::vector<double> losses(grid.size(), 0.0);
      if (shard.rows > 0) {
        const TrialLoss loss(ctx, settings, w, cap, group);
        for (size_t k = 0; k < grid.size(); ++k) losses[k] = loss(grid[k]);
      }
      QUANTD_RETURN_IF_ERROR(ReduceRowMeans(comm_, shard, &losses));
      absl::StatusOr<ScaleSearchResult> best = PickBestScale(std::move(grid), std::move(losses));
      if (!best.ok()) {
        return absl::Status(best.status().code(),
                            absl::StrCat(group.label, ": ", best.status().message()));
      }
      ScalingDecision d{group.label,  best->best_index, best->best_ratio, best->best_loss,
                        best->losses, best->scales,     x_mean,           w_mean};
      if (quality) {  // the quality report: both on the slice
        const std::vector<float> ones(best->scales.size(), 1.0f);
        const TrialLoss compared_loss(ctx, settings, w, compared, group);
        d.rtn_loss = compared_loss(ones);
        d.awq_loss = compared_loss(best->scales);
        d.compare_tokens = std::min(slice_rows, CapturedInput(compared, group.input)->dim(0));
      }
      out.scaling.push_back(std::move(d));
    }
    // Apply all scales in group order (each search above saw the original weights).
    for (size_t i = 0; i < groups.size(); ++i) {
      ApplyGroupScales(FoldedGroup(groups[i], settings), out.scaling[i].scales, md, config.norm,
                       &w);
    }
    if (settings.apply_clip) {
      if (absl::Status s = CheckCancel(cancel); !s.ok()) return s;
      QUANTD_RETURN_IF_ERROR(ClipLinears(config, comm_, shards, groups, out.scaling, cap, md,
                                         scheme, settings.min_expert_tokens, &w, &out.clips));
    }
    if (cap.moe.has_value()) {
      out.moe = MoeStatsOf(shards.ExpertTokens(), settings.min_expert_tokens);
    }
    for (const LinearSpec& spec : LayerLinears(config)) {
      out.linears.push_back({spec.name, QuantizeLinearGemm(*FindLinear(&w, spec.name), scheme,
                                                           settings.scale_dtype)});
    }
    out.floats = TakeFloatTensors(config, &w);
    if (held_out().quantized_hidden != nullptr) {
      auto* h = static_cast<CpuActivations*>(held_out().quantized_hidden);
      ForwardDecoderLayer(
          MakeLayerContext(config, w.index, held_out().quantized_md, h->block_len()),
          DequantizedLayer(out), &h->hidden(), nullptr);
    }
    return out;
  }

  absl::Status ForwardLayer(const ModelConfig& config, DType md, const LayerWeights& weights,
                            Activations* hidden) override {
    auto* act = static_cast<CpuActivations*>(hidden);
    ForwardDecoderLayer(MakeLayerContext(config, weights.index, md, act->block_len()), weights,
                        &act->hidden(), nullptr);
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
};

}  // namespace

std::unique_ptr<Backend> CreateCpuBackend(Communicator* comm) {
  return std::make_unique<CpuBackend>(comm);
}

Tensor CpuLogits(const ModelConfig& config, DType md, const Tensor& final_norm,
                 const Tensor& lm_head, const Tensor& hidden) {
  const Tensor normed =
      RmsNorm(hidden, final_norm, static_cast<float>(config.rms_norm_eps), md, config.norm);
  Tensor logits = Linear(normed, LinearWeights{lm_head, std::nullopt}, md);
  if (config.final_logit_softcapping > 0) {
    SoftCap(static_cast<float>(config.final_logit_softcapping), md, &logits);
  }
  return logits;
}

}  // namespace quantd::engine
