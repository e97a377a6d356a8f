// Data-parallel calibration on the CPU backend (threads joined by the in-process communicator, as
// GPUs are by NCCL): 1, 2, 3 and 4 ranks take the decisions of the plain single-rank backend —
// every scaling group's ratio, every clip choice, MoE layers' routed token counts — on the
// test-data models (dense and MoE), up to the order of floating-point sums, and the quantized
// model's NLL with them. Errors and cancellation stop every rank.
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/cpu_backend.h"
#include "gtest/gtest.h"
#include "io/checkpoint_reader.h"
#include "model/model_config.h"
#include "parallel/data_parallel_backend.h"
#include "testing/awq_test_safetensors.h"
#include "testing/family_models.h"
#include "testing/io_random_model.h"
#include "testing/io_temp_dir.h"
#include "tests/testing/test_data.h"

namespace quantd::engine {
namespace {

using Blocks = std::vector<std::vector<int32_t>>;

std::unique_ptr<Backend> CpuRanks(int ranks) {
  absl::StatusOr<std::unique_ptr<Backend>> b = CreateDataParallelBackend(BackendKind::kCpu, ranks);
  EXPECT_TRUE(b.ok()) << b.status();
  return b.ok() ? std::move(*b) : nullptr;
}

struct Model {
  ModelConfig config;
  std::unique_ptr<CheckpointReader> reader;
  Tensor embedding, final_norm, lm_head;
};

std::optional<Model> OpenModel(const std::string& dir) {
  absl::StatusOr<ModelConfig> config = LoadModelConfig(dir);
  absl::StatusOr<std::unique_ptr<CheckpointReader>> reader = CheckpointReader::Open(dir);
  if (!config.ok() || !reader.ok()) {
    ADD_FAILURE() << dir << ": " << config.status() << " / " << reader.status();
    return std::nullopt;
  }
  Model m{*config, std::move(*reader), {}, {}, {}};
  absl::StatusOr<Tensor> embedding = m.reader->LoadEmbedding();
  absl::StatusOr<Tensor> final_norm = m.reader->LoadFinalNorm();
  absl::StatusOr<Tensor> lm_head = m.reader->LoadLmHead(m.config);
  if (!embedding.ok() || !final_norm.ok() || !lm_head.ok()) {
    ADD_FAILURE() << dir << ": cannot read the embedding, final norm or lm_head";
    return std::nullopt;
  }
  m.embedding = *std::move(embedding);
  m.final_norm = *std::move(final_norm);
  m.lm_head = *std::move(lm_head);
  return m;
}

// Every layer quantized with `backend` over `calib`, and the NLL of `eval` through the quantized
// model (each block predicting itself shifted by one; no eval blocks: no NLL).
struct Run {
  std::vector<QuantizedLayer> layers;
  double quantized_nll = 0.0;
};

using Tweak = std::function<void(LayerQuantSettings*)>;

Run Quantize(Backend& backend, const Model& m, const Blocks& calib, const Blocks& eval,
             const Tweak& tweak) {
  Run run;
  LayerQuantSettings settings{128, m.config.dtype, true};
  if (tweak) tweak(&settings);
  auto hidden = backend.Embed(m.embedding, calib);
  absl::StatusOr<std::unique_ptr<Activations>> quantized;
  if (!eval.empty()) quantized = backend.Embed(m.embedding, eval);
  if (!hidden.ok() || (!eval.empty() && !quantized.ok())) {
    ADD_FAILURE() << "Embed: " << hidden.status() << " / " << quantized.status();
    return run;
  }
  for (int l = 0; l < m.config.num_hidden_layers; ++l) {
    absl::StatusOr<LayerWeights> w = m.reader->LoadLayer(m.config, l);
    if (!w.ok()) {
      ADD_FAILURE() << w.status();
      return run;
    }
    absl::StatusOr<QuantizedLayer> q =
        backend.QuantizeLayer(m.config, settings, *std::move(w), hidden->get(), nullptr);
    if (!q.ok()) {
      ADD_FAILURE() << "layer " << l << ": " << q.status();
      return run;
    }
    if (!eval.empty()) {
      EXPECT_TRUE(
          backend.ForwardLayer(m.config, DType::kF16, DequantizedLayer(*q), quantized->get()).ok());
    }
    run.layers.push_back(*std::move(q));
  }
  if (eval.empty()) return run;
  Blocks targets;
  for (const auto& b : eval) {
    targets.emplace_back(b.begin() + 1, b.end());
    targets.back().push_back(b.front());
  }
  absl::StatusOr<double> nll =
      backend.NextTokenNll(m.config, DType::kF16, m.final_norm, m.lm_head, **quantized, targets);
  EXPECT_TRUE(nll.ok()) << nll.status();
  run.quantized_nll = nll.ok() ? *nll : 0.0;
  return run;
}

// The share of ratios and of clip choices two runs have in common; the losses of the grid agree
// to float-sum order.
struct Agreement {
  int ratios = 0, same_ratios = 0;
  int64_t clips = 0, same_clips = 0;
  int searched_experts = 0;  // MoE: experts at or over min_expert_tokens, summed over layers
};

Agreement Compare(const Run& want, const Run& got) {
  Agreement a;
  EXPECT_EQ(want.layers.size(), got.layers.size());
  for (size_t l = 0; l < std::min(want.layers.size(), got.layers.size()); ++l) {
    const QuantizedLayer& x = want.layers[l];
    const QuantizedLayer& y = got.layers[l];
    EXPECT_EQ(x.scaling.size(), y.scaling.size());
    for (size_t g = 0; g < std::min(x.scaling.size(), y.scaling.size()); ++g) {
      ++a.ratios;
      a.same_ratios += x.scaling[g].ratio_index == y.scaling[g].ratio_index ? 1 : 0;
      for (size_t k = 0; k < x.scaling[g].losses.size(); ++k) {
        EXPECT_NEAR(y.scaling[g].losses[k], x.scaling[g].losses[k],
                    1e-6 * std::fabs(x.scaling[g].losses[k]) + 1e-30)
            << "layer " << l << " group " << g << " grid point " << k;
      }
      EXPECT_EQ(y.scaling[g].x_mean, x.scaling[g].x_mean) << "layer " << l << " group " << g;
    }
    // MoE: the routed token counts of all ranks, and so the same under-calibrated experts.
    EXPECT_EQ(x.moe.has_value(), y.moe.has_value());
    if (x.moe.has_value() && y.moe.has_value()) {
      EXPECT_EQ(y.moe->tokens_per_expert, x.moe->tokens_per_expert) << "layer " << l;
      EXPECT_EQ(y.moe->under_calibrated, x.moe->under_calibrated) << "layer " << l;
      a.searched_experts +=
          static_cast<int>(x.moe->tokens_per_expert.size() - x.moe->under_calibrated.size());
    }
    EXPECT_EQ(x.clips.size(), y.clips.size());
    for (size_t c = 0; c < std::min(x.clips.size(), y.clips.size()); ++c) {
      const auto& si = x.clips[c].shrink_index;
      const auto& sj = y.clips[c].shrink_index;
      EXPECT_EQ(si.size(), sj.size());
      for (size_t i = 0; i < std::min(si.size(), sj.size()); ++i) {
        ++a.clips;
        a.same_clips += si[i] == sj[i] ? 1 : 0;
      }
    }
  }
  return a;
}

// The single-rank run's agreement with the last of `rank_counts`.
Agreement ExpectRanksDecideAsOne(const std::string& model_dir, const Blocks& calib,
                                 const Blocks& eval, const std::vector<int>& rank_counts,
                                 const Tweak& tweak = nullptr) {
  Agreement last;
  std::optional<Model> m = OpenModel(model_dir);
  if (!m.has_value()) return last;
  std::unique_ptr<Backend> single = CreateCpuBackend();  // no communicator at all
  const Run want = Quantize(*single, *m, calib, eval, tweak);
  EXPECT_EQ(static_cast<int>(want.layers.size()), m->config.num_hidden_layers);
  if (static_cast<int>(want.layers.size()) != m->config.num_hidden_layers) return last;
  for (int ranks : rank_counts) {
    std::unique_ptr<Backend> dp = CpuRanks(ranks);
    if (dp == nullptr) return last;
    const Run got = Quantize(*dp, *m, calib, eval, tweak);
    const Agreement a = Compare(want, got);
    last = a;
    std::printf(
        "[data-parallel] %d ranks, %zu blocks: ratios %d/%d, clips %lld/%lld, quantized "
        "NLL %.6f / %.6f\n",
        ranks, calib.size(), a.same_ratios, a.ratios, static_cast<long long>(a.same_clips),
        static_cast<long long>(a.clips), want.quantized_nll, got.quantized_nll);
    // The bar is 99.9 % of ratios and clip choices; on these models every one agrees.
    EXPECT_EQ(a.same_ratios, a.ratios) << ranks << " ranks";
    EXPECT_GE(static_cast<double>(a.same_clips), 0.999 * static_cast<double>(a.clips));
    EXPECT_NEAR(got.quantized_nll, want.quantized_nll, 1e-4 * std::fabs(want.quantized_nll));
  }
  return last;
}

Blocks RandomBlocks(int blocks, int len, int vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> id(0, vocab - 1);
  Blocks out(static_cast<size_t>(blocks));
  for (auto& b : out) {
    for (int t = 0; t < len; ++t) b.push_back(id(rng));
  }
  return out;
}

TEST(DataParallelTest, RanksDecideAsOneOnTheLlamaMhaFixture) {
  // AutoAWQ's own calibration rows of the parity fixture: 16 blocks of 128 tokens, split 16, 8+8
  // and 4×4; the clip sample (every 4th of 2048 rows) crosses every rank boundary.
  const std::string dir = quantd::test_data::Path("fixtures/autoawq-parity/llama-mha");
  absl::StatusOr<Blocks> calib = testing::ReadInputIdRows(dir + "/calib.jsonl");
  ASSERT_TRUE(calib.ok()) << calib.status();
  const Blocks eval(calib->begin(), calib->begin() + 3);  // fewer blocks than ranks: some idle
  ExpectRanksDecideAsOne(dir + "/model", *calib, eval, {1, 2, 4});
}

TEST(DataParallelTest, RanksDecideAsOneOnTinyQwen2Gqa) {
  // GQA, q/k/v bias, a trained model; 10 blocks over 4 ranks: 3+3+2+2.
  ExpectRanksDecideAsOne(quantd::test_data::Path("models/tiny-qwen2-wp/model"),
                         RandomBlocks(10, 64, 4096, 5), RandomBlocks(2, 64, 4096, 6), {4});
}

// MoE, the trained tiny-qwen3-moe-wp (8 experts, top-2): per-expert statistics, routed token
// counts and per-expert clip samples are reduced across ranks. 8 blocks of 64 tokens route 1024
// rows to 8 experts (128 on average), 3 ranks hold 192, 192 and 128 tokens (about 48, 48 and 32
// rows an expert): with min_expert_tokens 64 most experts are searched over all ranks' rows, while
// no rank holds 64 rows of an average expert — a rank deciding on its own counts would keep
// identity scales. An expert's rows are top-1 choices, then top-2, over all tokens: the clip
// sample takes them in that order across ranks, not rank after rank.
TEST(DataParallelTest, RanksDecideAsOneOnTinyQwen3MoeWp) {
  const Agreement a = ExpectRanksDecideAsOne(
      quantd::test_data::Path("models/tiny-qwen3-moe-wp/model"), RandomBlocks(8, 64, 4096, 11), {},
      {2, 3}, [](LayerQuantSettings* s) { s->min_expert_tokens = 64; });
  EXPECT_GT(a.searched_experts, 0);
}

// MoE with a shared expert (Qwen2-MoE miniature, random weights: 4 experts, top-2, a shared
// expert whose down_proj reads every token) on 2 ranks.
TEST(DataParallelTest, RanksDecideAsOneOnQwen2MoeMiniature) {
  testing::IoTempDir dir;
  testing::RandomModelOptions o;
  o.config = testing::MiniatureConfig("qwen2_moe");
  o.output_dir = dir.Sub("qwen2_moe");
  o.seed = 3;
  o.outlier_channels = 4;
  o.outlier_scale = 8.0f;
  ASSERT_TRUE(testing::WriteRandomModel(o).ok());
  const Agreement a = ExpectRanksDecideAsOne(o.output_dir, RandomBlocks(4, 64, 256, 13), {}, {2},
                                             [](LayerQuantSettings* s) { s->group_size = 64; });
  EXPECT_GT(a.searched_experts, 0);
}

// Layer 0 of the llama-mha fixture quantized on `ranks` CPU ranks over `blocks` random blocks.
absl::StatusOr<QuantizedLayer> FirstLayerOnRanks(int ranks, int blocks,
                                                 const CancellationToken* cancel) {
  std::optional<Model> m =
      OpenModel(quantd::test_data::Path("fixtures/autoawq-parity/llama-mha/model"));
  if (!m.has_value()) return absl::InternalError("no model");
  std::unique_ptr<Backend> dp = CpuRanks(ranks);
  auto hidden = dp->Embed(m->embedding, RandomBlocks(blocks, 16, 512, 1));
  if (!hidden.ok()) return hidden.status();
  absl::StatusOr<LayerWeights> w = m->reader->LoadLayer(m->config, 0);
  if (!w.ok()) return w.status();
  return dp->QuantizeLayer(m->config, LayerQuantSettings{128, m->config.dtype, true}, *std::move(w),
                           hidden->get(), cancel);
}

TEST(DataParallelTest, FewerCalibrationBlocksThanRanksIsAnErrorNamingGpus) {
  absl::StatusOr<QuantizedLayer> q = FirstLayerOnRanks(4, 3, nullptr);
  EXPECT_EQ(q.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(q.status().message().find("gpus"), std::string::npos) << q.status();
  EXPECT_TRUE(FirstLayerOnRanks(3, 3, nullptr).ok());
}

TEST(DataParallelTest, CancellationStopsEveryRank) {
  CancellationToken token;
  token.Cancel();
  absl::StatusOr<QuantizedLayer> q = FirstLayerOnRanks(3, 6, &token);
  EXPECT_EQ(q.status().code(), absl::StatusCode::kCancelled) << q.status();
}

TEST(DataParallelTest, AskingForNoGpuIsAnError) {
  absl::StatusOr<std::unique_ptr<Backend>> b = CreateDataParallelBackend(BackendKind::kCpu, 0);
  EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(b.status().message().find("gpus"), std::string::npos);
}

}  // namespace
}  // namespace quantd::engine
