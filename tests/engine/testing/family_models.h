// Configs of every supported family for tests: miniatures (real feature set, tiny geometry, so the
// CPU suite stays fast) and the real geometry of each family's published config
// (tests/data/configs) with layers, vocabulary and windows cut, for the gpu tests. Plus random
// pre-tokenized calibration.
#ifndef QUANTD_TESTS_ENGINE_TESTING_FAMILY_MODELS_H_
#define QUANTD_TESTS_ENGINE_TESTING_FAMILY_MODELS_H_

#include <string>
#include <vector>

#include "core/dtype.h"
#include "nlohmann/json.hpp"

namespace quantd::engine::testing {

// The registry's family names (model/registry.h) these helpers know, in registry order.
std::vector<std::string> FamilyNames();

// Hidden 128, 2 layers, vocab 256, windows of 24 tokens where the family has windows (so blocks of
// 64 exercise them), and every feature its real configs have: Llama 3's llama3 RoPE and tied
// embeddings, Qwen2's bias, Qwen3's q/k norms with an explicit head_dim, Gemma's head_dim 256,
// query_pre_attn_scalar, soft-capping (Gemma 2) and local/global layers (Gemma 3), Phi-3's fused
// Linears (plain MHA, so its qkv_proj -> o_proj group runs).
// MoE families: 4 experts, 2 per token, expert width 128 (Qwen2-MoE: a shared expert of 256),
// Mixtral with a window of 24; head_dim 64 (the CUDA attention's smallest).
nlohmann::json MiniatureConfig(const std::string& family);

// Whether the family's miniature is written with transformers 5's fused 3-D experts (Mixtral; the
// others per expert, as the Hub stores them).
bool FusedExperts(const std::string& family);

// The family's published config (tests/data/configs; Qwen2: Qwen2.5-0.5B's geometry, Qwen2-MoE:
// Qwen1.5-MoE-A2.7B's) with
// `layers` layers (Gemma 3: the last one global), `vocab` tokens and sliding windows of `window`.
nlohmann::json RealGeometryConfig(const std::string& family, int layers, int vocab, int window);

// `rows` lines of {"input_ids": [...]} with `len` random ids below `vocab`.
void WriteRandomTokenRows(const std::string& path, int rows, int len, int vocab, uint32_t seed);

}  // namespace quantd::engine::testing

#endif  // QUANTD_TESTS_ENGINE_TESTING_FAMILY_MODELS_H_
