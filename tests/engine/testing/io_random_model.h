// Writes a random model directory of any supported geometry: config.json plus a safetensors
// checkpoint (sharded past max_shard_bytes), streamed one tensor at a time so a 7B geometry needs
// memory for one tensor only. A few RMSNorm channels are scaled up to plant activation outliers,
// which is what gives AWQ's scale search something to find. Used by the engine tests and by
// bench/random_model (quantd-random-model).
#ifndef QUANTD_TESTS_ENGINE_TESTING_IO_RANDOM_MODEL_H_
#define QUANTD_TESTS_ENGINE_TESTING_IO_RANDOM_MODEL_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "core/dtype.h"
#include "nlohmann/json.hpp"

namespace quantd::engine::testing {

struct RandomModelOptions {
  nlohmann::json config;  // A config.json document (its dtype field is replaced by `dtype`).
  std::string output_dir;
  DType dtype = DType::kF16;
  uint64_t seed = 0;
  int outlier_channels = 0;  // Per norm, channels multiplied by outlier_scale.
  float outlier_scale = 20.0f;
  int64_t max_shard_bytes = 5'000'000'000;
  // 1: one random stream over every tensor, in order (what the tests were calibrated with). More:
  // each 1M-value slice has its own stream, seeded from (seed, tensor, slice), generated that many
  // at a time in parallel (the end-to-end benchmark's 8B-parameter models).
  int threads = 1;
  // MoE models: transformers 5.x's fused 3-D expert tensors (io/moe_checkpoint.h) instead of the
  // Hub's per-expert ones.
  bool fused_experts = false;
};

absl::Status WriteRandomModel(const RandomModelOptions& options);

// A small config of the given architecture ("LlamaForCausalLM", ...) for tests: hidden 64,
// 2 layers, 4 heads / 2 kv heads, intermediate 128, vocab 96 (Gemma: head_dim 32, a window of 16
// on alternate layers, soft-capping for Gemma 2; MoE families: 2 experts, 1 per token).
nlohmann::json TinyConfig(const std::string& architecture, bool tied);

}  // namespace quantd::engine::testing

#endif  // QUANTD_TESTS_ENGINE_TESTING_IO_RANDOM_MODEL_H_
