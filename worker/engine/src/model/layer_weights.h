// The float weights of one decoder layer, as loaded from the checkpoint (exact float32 copies of
// the stored values) and as modified in place by AWQ scaling and clipping. A layer holds the union
// of what the supported families' layers can have; which of it a family uses is described by its
// record (model/architecture.h), and every tensor is reachable by its name relative to the layer
// ("self_attn.q_proj", "input_layernorm"), so scaling groups and tensor lists stay data.
#ifndef QUANTD_ENGINE_MODEL_LAYER_WEIGHTS_H_
#define QUANTD_ENGINE_MODEL_LAYER_WEIGHTS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "core/tensor.h"

namespace quantd::engine {

class SafetensorsFile;  // io/safetensors_file.h

// A Linear's weight still in the checkpoint: `count` values of `dtype` at `bytes`, inside `file`'s
// memory mapping — elements [first, first + count) of its tensor `tensor` (a fused parameter holds
// several Linears). CheckpointReader::LoadLayerSources leaves the Linears there: the CUDA backend
// streams them to the GPU without a float32 copy of the layer on the host; io/source_values.h
// reads them into float32 (MaterializeLayer: the CPU backend's layers).
struct SourceValues {
  const SafetensorsFile* file = nullptr;
  std::string tensor;
  DType dtype = DType::kF32;
  const uint8_t* bytes = nullptr;
  int64_t first = 0;
  int64_t count = 0;
};

struct LinearWeights {
  Tensor weight;               // [out_features, in_features], PyTorch nn.Linear layout.
  std::optional<Tensor> bias;  // [out_features]
  // Set while the weight's values are still in the checkpoint (weight.shape set, weight.data
  // empty); the bias, small, is always read.
  std::optional<SourceValues> source = std::nullopt;
  int64_t out_features() const { return weight.dim(0); }
  int64_t in_features() const { return weight.dim(1); }
};

// One SiLU-gated MLP of a sparse MoE block: down(silu(gate(x)) · up(x)). Mixtral's w1 / w3 / w2.
struct ExpertWeights {
  LinearWeights gate_proj, up_proj, down_proj;
};

// A sparse MoE block (model/moe_layout.h names its tensors).
struct MoeWeights {
  LinearWeights router;  // [num_experts, hidden]; float, never quantized
  std::vector<ExpertWeights> experts;
  std::optional<ExpertWeights> shared_expert;       // Qwen2-MoE
  std::optional<LinearWeights> shared_expert_gate;  // Qwen2-MoE: [1, hidden]; float
};

// Canonical names, relative to the layer. Fused source Linears (Phi-3's qkv_proj, gate_up_proj)
// are split into these on load and joined again on export.
inline constexpr char kQProj[] = "self_attn.q_proj";
inline constexpr char kKProj[] = "self_attn.k_proj";
inline constexpr char kVProj[] = "self_attn.v_proj";
inline constexpr char kOProj[] = "self_attn.o_proj";
inline constexpr char kGateProj[] = "mlp.gate_proj";
inline constexpr char kUpProj[] = "mlp.up_proj";
inline constexpr char kDownProj[] = "mlp.down_proj";
inline constexpr char kInputNorm[] = "input_layernorm";
inline constexpr char kPostAttentionNorm[] = "post_attention_layernorm";
inline constexpr char kPreFeedforwardNorm[] = "pre_feedforward_layernorm";
inline constexpr char kPostFeedforwardNorm[] = "post_feedforward_layernorm";
inline constexpr char kQNorm[] = "self_attn.q_norm";
inline constexpr char kKNorm[] = "self_attn.k_norm";

struct LayerWeights {
  int index = 0;           // the layer's number in the model (per-layer attention settings)
  Tensor input_layernorm;  // [hidden]
  Tensor post_attention_layernorm;  // [hidden]; Gemma 2/3: the norm of the attention output
  LinearWeights q_proj, k_proj, v_proj, o_proj;
  LinearWeights gate_proj, up_proj, down_proj;
  std::optional<Tensor> q_norm, k_norm;  // Qwen3, Gemma 3: [head_dim]
  // Gemma 2/3: the norms before and after the MLP.
  std::optional<Tensor> pre_feedforward_layernorm, post_feedforward_layernorm;
  // MoE families: the sparse block in the MLP's place (gate/up/down_proj stay empty).
  std::optional<MoeWeights> moe;
  // Set by a LayerPrefetcher that reads layers one at a time (memory_plan::LayersInFlight): the
  // next layer's read waits until this is released — with the last copy of the layer, or early by
  // ReleaseLinearWeights.
  std::shared_ptr<void> host_lease;
};

// Calls fn on every Linear of `layer` (the sparse block's router and shared-expert gate included).
void ForEachLinear(LayerWeights* layer, const std::function<void(LinearWeights&)>& fn);

// Frees the host values of every Linear of `layer` (weights and biases, or their sources; the
// shapes stay, so the layer's geometry can still be checked) and releases its host_lease. For a
// backend that has its own copy of the layer (the CUDA backend once it is uploaded): the next
// layer's read can start without two layers' float32 weights on the host.
void ReleaseLinearWeights(LayerWeights* layer);

// A Linear or float tensor of a layer by its name relative to the layer; nullptr for names the
// layer has no slot for (a float tensor's slot is returned even when the family leaves it empty).
LinearWeights* FindLinear(LayerWeights* layer, std::string_view name);
const LinearWeights* FindLinear(const LayerWeights& layer, std::string_view name);
Tensor* FindFloatTensor(LayerWeights* layer, std::string_view name);
const Tensor* FindFloatTensor(const LayerWeights& layer, std::string_view name);

// A float tensor of a layer with its name relative to the layer ("input_layernorm").
struct NamedTensor {
  std::string name;
  Tensor tensor;
};

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_MODEL_LAYER_WEIGHTS_H_
