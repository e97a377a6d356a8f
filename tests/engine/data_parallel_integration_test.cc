// Data-parallel calibration on the CPU backend (threads joined by the in-process communicator, as
// GPUs are by NCCL): 1, 2 and 4 ranks take the decisions of the plain single-rank backend —
// every scaling group's ratio, every clip choice — on the test-data models, up to the order of
// floating-point sums, and the quantized model's NLL with them. Errors and cancellation stop
// every rank.
#include <cmath>
#include <cstdio>
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
// model (each block predicting itself shifted by one).
struct Run {
  std::vector<QuantizedLayer> layers;
  double quantized_nll = 0.0;
};

Run Quantize(Backend& backend, const Model& m, const Blocks& calib, const Blocks& eval) {
  Run run;
  const LayerQuantSettings settings{128, m.config.dtype, true};
  auto hidden = backend.Embed(m.embedding, calib);
  auto quantized = backend.Embed(m.embedding, eval);
  if (!hidden.ok() || !quantized.ok()) {
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
    EXPECT_TRUE(
        backend.ForwardLayer(m.config, DType::kF16, DequantizedLayer(*q), quantized->get()).ok());
    run.layers.push_back(*std::move(q));
  }
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

void ExpectRanksDecideAsOne(const std::string& model_dir, const Blocks& calib, const Blocks& eval,
                            const std::vector<int>& rank_counts) {
  std::optional<Model> m = OpenModel(model_dir);
  ASSERT_TRUE(m.has_value());
  std::unique_ptr<Backend> single = CreateCpuBackend();  // no communicator at all
  const Run want = Quantize(*single, *m, calib, eval);
  ASSERT_EQ(static_cast<int>(want.layers.size()), m->config.num_hidden_layers);
  for (int ranks : rank_counts) {
    std::unique_ptr<Backend> dp = CpuRanks(ranks);
    ASSERT_NE(dp, nullptr);
    const Run got = Quantize(*dp, *m, calib, eval);
    const Agreement a = Compare(want, got);
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
