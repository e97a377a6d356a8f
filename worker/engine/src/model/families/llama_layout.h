// The Llama-style decoder layer most families share — q/k/v/o and gate/up/down Linears, RMSNorms
// before attention and MLP — with the variations their configs switch on (q/k/v bias, q/k norms,
// Gemma's four norms), and AutoAWQ's scaling groups for it (spec/awq.md §2.5; the same in
// AutoAWQ's llama.py, qwen2.py, qwen3.py, mistral.py and gemma2.py, up to the MLP norm's name).
#ifndef QUANTD_ENGINE_MODEL_FAMILIES_LLAMA_LAYOUT_H_
#define QUANTD_ENGINE_MODEL_FAMILIES_LLAMA_LAYOUT_H_

#include <vector>

#include "model/architecture.h"

namespace quantd::engine {

// q, k, v (+ bias with config.attention_bias), o (+ q_norm, k_norm with config.qk_norm), gate, up,
// down, then input_layernorm and post_attention_layernorm (+ pre_/post_feedforward_layernorm with
// config.sandwich_norms), in Hugging Face state-dict order.
std::vector<LayerTensorSpec> LlamaLayerTensors(const ModelConfig& config);

// Whether v_proj and o_proj weights have the same shape (plain MHA: num_key_value_heads ·
// head_dim == hidden_size == num_attention_heads · head_dim): AutoAWQ's condition for the
// v_proj → o_proj group (llm-awq PR #67; every GQA model skips it).
bool ValueOutputGroupApplies(const ModelConfig& config);

// input_layernorm → q, k, v (loss on self_attn); v_proj → o_proj (when ValueOutputGroupApplies;
// loss on o_proj); mlp_norm → gate, up (loss on mlp); up_proj → down_proj (loss on down_proj).
std::vector<ScalingGroup> LlamaScalingGroups(const ModelConfig& config, const char* mlp_norm);

// The same with the MLP fed by post_attention_layernorm (Llama, Qwen2/3, Mistral, Phi-3) or by
// pre_feedforward_layernorm (Gemma 2/3), as an ArchitectureSpec's scaling_groups.
std::vector<ScalingGroup> PostAttentionNormGroups(const ModelConfig& config);
std::vector<ScalingGroup> PreFeedforwardNormGroups(const ModelConfig& config);

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_MODEL_FAMILIES_LLAMA_LAYOUT_H_
