// Backend: where the layer math of the AWQ engine runs. The pipeline (pipeline/quantize.cc) streams
// the model one decoder layer at a time through a Backend; the CPU backend (backend/cpu) is the
// reference, a CUDA backend implements the same interface. The calls are coarse — one per decoder
// layer — so that a device backend can keep activations resident, fuse and batch freely.
#ifndef QUANTD_ENGINE_BACKEND_BACKEND_H_
#define QUANTD_ENGINE_BACKEND_BACKEND_H_

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "awq/gemm_packing.h"
#include "awq/pseudo_quantize.h"
#include "core/dtype.h"
#include "core/tensor.h"
#include "model/layer_weights.h"
#include "model/model_config.h"
#include "model/scaling_group.h"
#include "quantd/engine/quantize.h"

namespace quantd::engine {

// The hidden states of a set of equal-length token blocks ([blocks · len, hidden]), held where the
// backend computes (host memory, device memory). Each block is an independent causal sequence with
// positions 0..len−1.
class Activations {
 public:
  virtual ~Activations() = default;
  virtual int64_t num_blocks() const = 0;
  virtual int64_t block_len() const = 0;
};

// AWQ settings a backend needs per layer.
struct LayerQuantSettings {
  int64_t group_size = 128;  // ≤ 0: per-channel
  DType md = DType::kF16;    // the model dtype AutoAWQ searches in
  bool apply_clip = true;
  // AutoAWQ 0.2.9 run under transformers >= 5 leaks a KV cache into the attention group's search:
  // each trial's keys and values are appended after the float layer's, and top-left causal SDPA
  // attends only to the float ones, so only q_proj's quantization error is measured. Off (the
  // spec's behaviour, transformers 4.51 as the seed pins) except to compare with fixtures that were
  // made that way (fixtures/autoawq-parity, transformers 5.17).
  bool attention_trials_use_float_kv = false;
  bool zero_point = true;  // false: symmetric (the search's trials quantize the same way)
  // The dtype the final quantization computes and stores scales in (AutoAWQ: float16); the
  // quantized model's dtype.
  DType scale_dtype = DType::kF16;
  // MoE: an expert routed fewer calibration tokens than this keeps identity down_proj scales and
  // gets no clip search — statistics of a handful of tokens are noise (docs/moe.md, "Experts with
  // few tokens"); the report lists it.
  int64_t min_expert_tokens = 32;
  // MoE: fold the experts' input scales into the router's (and shared_expert_gate's) columns too
  // (ScalingGroup::float_consumers), so routing is unchanged by scaling. False reproduces AutoAWQ,
  // which leaves them out: only for measuring what the correction is worth.
  bool scale_router_inputs = true;

  QuantScheme scheme() const { return {group_size, zero_point}; }
};

// A slice of the calibration tokens on which each scaling group's output error is measured twice
// more, for the quality report (when held-out states are set, Backend::SetHeldOut): with
// round-to-nearest weights (scale vector 1, no AWQ) and with the chosen scales. Every backend
// takes the same slice, the first blocks of its capture: ⌈blocks / 16⌉, the held-out rows'
// share of the calibration file (docs/quality.md says what that costs and how close it comes to
// the loss on all tokens).
inline constexpr int64_t kQualitySliceDivisor = 16;
int64_t QualitySliceBlocks(int64_t blocks);

// How calibration reached a sparse layer's experts.
struct MoeLayerStats {
  std::vector<int64_t> tokens_per_expert;  // routed calibration tokens per expert
  std::vector<int> under_calibrated;       // experts with fewer than min_expert_tokens
  int64_t min_expert_tokens = 0;
};

// The stats of routed token counts per expert.
MoeLayerStats MoeStatsOf(std::vector<int64_t> tokens_per_expert, int64_t min_tokens);

// What the search chose for one scaling group.
struct ScalingDecision {
  std::string label;    // "input_layernorm->self_attn.q_proj+self_attn.k_proj+self_attn.v_proj"
  int ratio_index = 0;  // k of ratio k/20
  double ratio = 0.0;
  double loss = 0.0;
  std::vector<double> losses;  // loss of every grid point
  std::vector<float> scales;   // [in_features], values in md
  // The statistics the grid was built from: ScalesForRatio(x_mean, w_mean, k/20) is grid point k.
  std::vector<float> x_mean, w_mean;
  // What the search gained (quality report): the group's output error with round-to-nearest
  // weights and with the chosen scales, on `compare_tokens` tokens (the quality slice). NaN when
  // not measured.
  double rtn_loss = std::numeric_limits<double>::quiet_NaN();
  double awq_loss = std::numeric_limits<double>::quiet_NaN();
  int64_t compare_tokens = 0;
};

// The decision of a group that is not searched (a routed expert's down_proj group whose expert got
// fewer than min_expert_tokens tokens): identity scales over `channels`, ratio_index −1.
ScalingDecision UnsearchedDecision(const ScalingGroup& group, int64_t channels);

// The group as its scales are folded into the layer: without its float consumers when
// settings.scale_router_inputs is off (AutoAWQ's behaviour, for measuring it).
ScalingGroup FoldedGroup(const ScalingGroup& group, const LayerQuantSettings& settings);

// What the clip search chose for one Linear.
struct ClipDecision {
  std::string linear;                 // "self_attn.v_proj"
  Tensor max_val;                     // [out, in / group]
  std::vector<uint8_t> shrink_index;  // [out · in / group], bound = max|w| · (1 − i/20)
};

struct QuantizedLinear {
  std::string name;  // canonical, relative to the layer: "self_attn.q_proj"
  GemmPackedLinear packed;
};

// One quantized decoder layer: the packed Linears, the float tensors after AWQ scaling (values in
// md) and the decisions, for the checkpoint and the report.
struct QuantizedLayer {
  int index = 0;                         // the layer's number
  std::vector<QuantizedLinear> linears;  // LayerLinears(config) order
  std::vector<NamedTensor> floats;       // LayerFloatTensors(config): the norms, scaled
  std::vector<ScalingDecision> scaling;
  std::vector<ClipDecision> clips;
  std::optional<MoeLayerStats> moe;  // sparse layers
};

// A device backend's memory: its plan for a run (an estimate from the geometry, before the first
// layer) and what it has allocated, for the job log and quant_report.json.
struct DeviceMemoryReport {
  std::string plan;                  // one line for the job log
  int64_t planned_bytes = 0;         // the plan's total
  int64_t peak_allocated_bytes = 0;  // high-water mark of the backend's own device allocations
  int64_t device_total_bytes = 0;    // the device's memory
  int64_t device_free_bytes = 0;     // free on the device when asked (all processes)
};

// Held-out token windows that advance through every layer beside its quantization, for the
// quality report's perplexities: the float model's hidden states through the float layer (in the
// model's dtype), the quantized model's through the dequantized layer (in `quantized_md`, the
// dtype of its scales). Both must have the calibration blocks' length.
struct HeldOutStates {
  Activations* float_hidden = nullptr;
  Activations* quantized_hidden = nullptr;
  DType quantized_md = DType::kF16;
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual std::string_view name() const = 0;

  // From the next QuantizeLayer call on, each call also forwards these held-out states (not
  // owned; they must outlive the calls) — a device backend reuses the layer's weights it already
  // holds — and measures each scaling group's error with round-to-nearest and with AWQ
  // (ScalingDecision::rtn_loss / awq_loss). Unset (the default): AWQ only.
  void SetHeldOut(const HeldOutStates& held_out) { held_out_ = held_out; }

  // Embeds token blocks (all of one length) with rows of embedding [vocab, hidden].
  virtual absl::StatusOr<std::unique_ptr<Activations>> Embed(
      const Tensor& embedding, const std::vector<std::vector<int32_t>>& blocks) = 0;

  // AWQ for one decoder layer (spec/awq.md §2.3): forwards the float layer over `hidden`, capturing
  // the Linears' inputs, and replaces `hidden` by the float layer's output (no error propagation);
  // searches every scaling group's ratio on the original weights, applies the scales, searches and
  // applies the clips, quantizes and packs. Checks `cancel` between scaling groups
  // (absl::CancelledError). `weights` is consumed.
  virtual absl::StatusOr<QuantizedLayer> QuantizeLayer(const ModelConfig& config,
                                                       const LayerQuantSettings& settings,
                                                       LayerWeights weights, Activations* hidden,
                                                       const CancellationToken* cancel) = 0;

  // Whether QuantizeLayer, StageLayer and ForwardLayer take layers whose Linears are still in the
  // checkpoint (LinearWeights::source, CheckpointReader::LoadLayerSources) and read them
  // themselves; otherwise they are given read layers (MaterializeLayer).
  virtual bool ReadsLayerSources() const { return false; }

  // May start moving `weights` — the layer the next QuantizeLayer call will receive — to the
  // device, so that the copy overlaps the work on the current layer. Called from another thread
  // while QuantizeLayer runs; `weights` need to stay valid only during the call. Best effort: a
  // backend that cannot stage now (or has nothing to stage to) does nothing, and QuantizeLayer
  // always works on the weights it is given.
  virtual void StageLayer(const ModelConfig& config, DType md, const LayerWeights& weights) {
    (void)config;
    (void)md;
    (void)weights;
  }

  // Forwards `hidden` through a float layer in place (perplexity of the float or the dequantized
  // model).
  virtual absl::Status ForwardLayer(const ModelConfig& config, DType md,
                                    const LayerWeights& weights, Activations* hidden) = 0;

  // Final RMSNorm and lm_head [vocab, hidden], then the summed negative log-likelihood of
  // targets[b][t], the token that follows position t of block b.
  virtual absl::StatusOr<double> NextTokenNll(const ModelConfig& config, DType md,
                                              const Tensor& final_norm, const Tensor& lm_head,
                                              const Activations& hidden,
                                              const std::vector<std::vector<int32_t>>& targets) = 0;

  // Backends with device memory report it (the plan for `tokens` calibration tokens of `config`
  // in `md`, and the allocations so far); host backends report nothing.
  virtual std::optional<DeviceMemoryReport> DeviceMemory(const ModelConfig& config, DType md,
                                                         int64_t tokens) {
    (void)config;
    (void)md;
    (void)tokens;
    return std::nullopt;
  }

 protected:
  const HeldOutStates& held_out() const { return held_out_; }

 private:
  HeldOutStates held_out_;
};

// The length shared by every token block (each block is one sequence); InvalidArgument when there
// are none or they differ. Used by every backend's Embed().
absl::StatusOr<int64_t> UniformBlockLength(const std::vector<std::vector<int32_t>>& blocks);

// Copies the embedding rows [vocab, hidden] of `block`'s ids to out[len · hidden]; InvalidArgument
// naming an id outside the vocabulary.
absl::Status GatherEmbeddingRows(const Tensor& embedding, const std::vector<int32_t>& block,
                                 float* out);

// Gemma: the embedding output × md(√hidden_size), as transformers scales it (the normaliser is a
// tensor of the model dtype); other families unchanged. Applied to the embedding rows before
// Backend::Embed.
void ScaleEmbeddingRows(const ModelConfig& config, DType md, Tensor* rows);

// kAuto → CUDA when compiled in and a GPU is present, else CPU. kCuda without CUDA is an error.
absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(BackendKind kind);

// The name() of the backend CreateBackend(kind) makes ("cpu", "cuda"), without making it.
std::string_view BackendNameFor(BackendKind kind);

// The float layer a quantized layer stands for: dequantized Linears (values in their scale dtype),
// biases and the scaled norms, for evaluating the quantized model.
LayerWeights DequantizedLayer(const QuantizedLayer& layer);

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_BACKEND_BACKEND_H_
