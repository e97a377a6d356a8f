// A sparse MoE layer's tensors by name — the layout real checkpoints have on the Hub (per-expert
// Linears), which is also the layout quantd writes: vLLM's and SGLang's MoE loaders map
// `…experts.E.gate_proj.qweight` (Mixtral `…experts.E.w1.qweight`) onto their fused expert
// parameters — and AutoAWQ's scaling groups for it. Names are relative to the decoder layer
// ("mlp.experts.3.up_proj"). The MoE families' records (model/families/{qwen3_moe,qwen2_moe,
// mixtral}.cc) are built from these.
#ifndef QUANTD_ENGINE_MODEL_MOE_LAYOUT_H_
#define QUANTD_ENGINE_MODEL_MOE_LAYOUT_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/architecture.h"
#include "model/layer_weights.h"
#include "model/moe_config.h"

namespace quantd::engine {

enum class ExpertProj { kGate, kUp, kDown };

// "mlp" (Qwen families) or "block_sparse_moe" (Mixtral).
std::string MoeBlockName(MoeStyle style);
// The router: "mlp.gate" / "block_sparse_moe.gate".
std::string RouterName(MoeStyle style);
// "mlp.experts.3.gate_proj" / "block_sparse_moe.experts.3.w1" (w1 gate, w3 up, w2 down).
std::string ExpertLinearName(MoeStyle style, int expert, ExpertProj proj);
// Qwen2-MoE's shared expert: "mlp.shared_expert.gate_proj", ...
std::string SharedExpertLinearName(ExpertProj proj);
inline constexpr char kSharedExpertGateName[] = "mlp.shared_expert_gate";

// The routed expert a Linear's name belongs to ("mlp.experts.3.up_proj" → 3); nullopt for every
// other name (the shared expert's included).
std::optional<int> ExpertOfLinear(std::string_view name);

// Whether a MoE Linear's name is a down projection ("….down_proj", Mixtral "….w2").
bool IsExpertDownProjection(std::string_view name);

// The sparse layer's tensors in Hugging Face state-dict order: the attention's (LlamaLayerTensors
// without the MLP), then the block — router (float), experts 0..E−1 (Mixtral in registration order
// w1, w2, w3), shared expert and shared_expert_gate (float) — then the norms.
std::vector<LayerTensorSpec> MoeLayerTensors(const ModelConfig& config);

// AutoAWQ's groups (awq/models/qwen3_moe.py, mixtral.py): attention and (plain MHA) v→o as for
// Llama; post_attention_layernorm → gate and up of ALL experts (and of the shared expert), loss on
// the whole block with its routing, the router and shared_expert_gate as float consumers; per
// expert up → down on exactly its routed tokens; the shared expert's up → down.
std::vector<ScalingGroup> MoeScalingGroups(const ModelConfig& config);

// Full module names of every float Linear inside the layers ("model.layers.0.mlp.gate", ...), for
// modules_to_not_convert: vLLM and SGLang match its entries as substrings of module paths, and a
// bare "mlp.gate" would also match "mlp.gate_proj" / "mlp.gate_up_proj".
std::vector<std::string> MoeUnquantizedModules(const ModelConfig& config);

// The slots of a MoE block by name (after the block's prefix "mlp." / "block_sparse_moe."):
// experts.E.{gate_proj,up_proj,down_proj,w1,w3,w2}, shared_expert.*, and the float Linears
// gate (router) and shared_expert_gate. The mutable forms create missing experts/optionals.
LinearWeights* FindMoeLinear(MoeWeights* block, std::string_view name);
const LinearWeights* FindMoeLinear(const MoeWeights& block, std::string_view name);
Tensor* FindMoeFloatTensor(MoeWeights* block, std::string_view name);
const Tensor* FindMoeFloatTensor(const MoeWeights& block, std::string_view name);
// Whether `name` belongs to a MoE block ("mlp.experts.…", "block_sparse_moe.…", ...).
bool IsMoeTensorName(std::string_view name);

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_MODEL_MOE_LAYOUT_H_
