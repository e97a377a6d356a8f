// Which vLLM tensor-parallel sizes and kernels serve a checkpoint (export/serving_compat.h), on
// real geometries: Qwen2.5-7B, and InternVL3-78B's language model (intermediate 29568), whose
// AWQ group-128 checkpoint vLLM refused at TP 2 (vLLM issue 21695).
#include "export/serving_compat.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace quantd::engine {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

ModelConfig Geometry(int hidden, int inter, int heads, int kv_heads, int head_dim) {
  ModelConfig c;
  c.hidden_size = hidden;
  c.intermediate_size = inter;
  c.num_attention_heads = heads;
  c.num_key_value_heads = kv_heads;
  c.head_dim = head_dim;
  c.raw = nlohmann::json::object();
  return c;
}

std::vector<int> Servable(const std::vector<TensorParallelFit>& fits) {
  std::vector<int> sizes;
  for (const TensorParallelFit& f : fits) {
    if (f.servable) sizes.push_back(f.size);
  }
  return sizes;
}

QuantFormat Ct(int group, bool zero_point = true) {
  QuantFormat f;
  f.format = CheckpointFormat::kCompressedTensors;
  f.group_size = group;
  f.zero_point = zero_point;
  return f;
}

TEST(ServingCompatTest, Qwen25_7bServesUpToTp4) {
  const ModelConfig c = Geometry(3584, 18944, 28, 4, 128);
  const std::vector<TensorParallelFit> gemm = ServingCompatibility(c, QuantFormat{});
  EXPECT_THAT(Servable(gemm), ElementsAre(1, 2, 4));
  EXPECT_THAT(gemm[3].reason, HasSubstr("28 attention heads are not divisible by 8"));
  EXPECT_THAT(gemm[0].kernels, ElementsAre("awq_marlin (sm80+)"));
  const std::vector<TensorParallelFit> ct = ServingCompatibility(c, Ct(128));
  EXPECT_THAT(Servable(ct), ElementsAre(1, 2, 4));
  EXPECT_THAT(ct[0].kernels, ElementsAre("Machete (sm90)"));
}

TEST(ServingCompatTest, Issue21695IntermediateNotAMultipleOfGroupTimesTp) {
  // InternVL3-78B (Qwen2.5-72B language model): 29568 / 128 = 231 groups, odd.
  const ModelConfig c = Geometry(8192, 29568, 64, 8, 128);
  const std::vector<TensorParallelFit> g128 = ServingCompatibility(c, QuantFormat{});
  EXPECT_THAT(Servable(g128), ElementsAre(1));
  EXPECT_THAT(g128[1].reason, HasSubstr("mlp.down_proj: input 14784 per shard is not a multiple "
                                        "of group 128 (vLLM issue 21695)"));
  QuantFormat g64;
  g64.group_size = 64;  // 14784 = 231 · 64: TP 2 works with group 64, as the issue's users did
  EXPECT_THAT(Servable(ServingCompatibility(c, g64)), ElementsAre(1, 2));
}

TEST(ServingCompatTest, KernelRules) {
  // Tiny widths: Marlin needs 64 / 128 tiles, Machete 128 outputs; the AWQ GEMM kernel is
  // float16 only; Exllama takes symmetric float16 weights.
  const ModelConfig tiny = Geometry(64, 128, 4, 2, 16);
  QuantFormat g32;
  g32.group_size = 32;
  const std::vector<TensorParallelFit> gemm = ServingCompatibility(tiny, g32);
  // vLLM picks per Linear: down_proj (128 inputs, 64 outputs) fits Marlin's tiles, the rest not.
  EXPECT_THAT(gemm[0].kernels, ElementsAre("awq_marlin (sm80+)", "awq (GEMM)"));
  QuantFormat bf16 = g32;
  bf16.output_dtype = OutputDtype::kBFloat16;
  const std::vector<TensorParallelFit> none = ServingCompatibility(tiny, bf16);
  EXPECT_FALSE(none[0].servable);
  EXPECT_THAT(none[0].reason, HasSubstr("float16 only"));
  const std::vector<TensorParallelFit> ct = ServingCompatibility(tiny, Ct(32, /*zp=*/false));
  EXPECT_THAT(ct[0].kernels, ElementsAre("Marlin (sm80+)", "Exllama"));
  EXPECT_FALSE(ServingCompatibility(tiny, Ct(32, /*zp=*/true))[0].servable);
  // Machete has no group 32: a Hopper serves group-32 checkpoints with Marlin.
  const ModelConfig c = Geometry(3584, 18944, 28, 4, 128);
  EXPECT_THAT(ServingCompatibility(c, Ct(32))[0].kernels, ElementsAre("Marlin (sm80+)"));
  // Per-channel: row-parallel shards repeat the scales, no group rule.
  EXPECT_THAT(Servable(ServingCompatibility(c, Ct(kPerChannelGroup))), ElementsAre(1, 2, 4));
}

TEST(ServingCompatTest, ReplicatedKvHeadsAndPackingOfEightRows) {
  // 2 KV heads of 64: at TP 4 they are replicated (64 rows per shard); q 8 heads → 2 per shard.
  // o_proj's 512 inputs split 8 ways leave 64 per shard, under one group of 128.
  const ModelConfig c = Geometry(512, 1024, 8, 2, 64);
  const std::vector<TensorParallelFit> g128 = ServingCompatibility(c, QuantFormat{});
  EXPECT_THAT(Servable(g128), ElementsAre(1, 2, 4));
  EXPECT_THAT(g128[3].reason, HasSubstr("o_proj: input 64 per shard"));
  // An intermediate size of 1000: 125 rows per shard at TP 8 cannot pack 8 to a word.
  const ModelConfig odd = Geometry(512, 1000, 8, 8, 64);
  const std::vector<TensorParallelFit> fits = ServingCompatibility(odd, Ct(-1));
  EXPECT_FALSE(fits[3].servable);
  EXPECT_THAT(fits[3].reason, HasSubstr("125 output rows is not a multiple of 8"));
}

}  // namespace
}  // namespace quantd::engine
