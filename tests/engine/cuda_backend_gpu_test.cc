// The CUDA backend against the CPU reference, through the Backend interface, on the shared models:
// the same scaling-group ratios and clip choices (≥ 95 %), the same float-model NLL and the same
// quantized-model NLL (within 0.5 %). Skips itself where no GPU (or no CUDA build) is present.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/cpu_backend.h"
#include "gtest/gtest.h"
#include "io/checkpoint_reader.h"
#include "model/model_config.h"
#include "testing/awq_test_safetensors.h"
#if defined(QUANTD_HAVE_CUDA)
#include "cuda/cuda_backend.h"
#endif

namespace quantd::engine {
namespace {

// The device machine receives the fixtures in a bundle; QUANTD_TEST_SHARED_DIR points there.
std::string SharedDir() {
  const char* env = std::getenv("QUANTD_TEST_SHARED_DIR");
  return env != nullptr ? std::string(env) : std::string(QUANTD_SHARED_DIR);
}

std::unique_ptr<Backend> CudaOrSkip() {
#if defined(QUANTD_HAVE_CUDA)
  if (!CudaDeviceAvailable()) return nullptr;
  absl::StatusOr<std::unique_ptr<Backend>> b = CreateCudaBackend();
  if (!b.ok()) {
    ADD_FAILURE() << b.status();
    return nullptr;
  }
  return std::move(*b);
#else
  return nullptr;
#endif
}

std::vector<std::vector<int32_t>> RandomBlocks(int blocks, int len, int vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> id(0, vocab - 1);
  std::vector<std::vector<int32_t>> out(static_cast<size_t>(blocks));
  for (auto& b : out) {
    for (int t = 0; t < len; ++t) b.push_back(id(rng));
  }
  return out;
}

// Next-token targets of a block: the block shifted by one, its last target the first token.
std::vector<std::vector<int32_t>> Targets(const std::vector<std::vector<int32_t>>& blocks) {
  std::vector<std::vector<int32_t>> out;
  for (const auto& b : blocks) {
    std::vector<int32_t> t(b.begin() + 1, b.end());
    t.push_back(b.front());
    out.push_back(std::move(t));
  }
  return out;
}

struct BackendRun {
  std::vector<QuantizedLayer> layers;
  double float_nll = 0.0;
  double quant_nll = 0.0;
};

// Quantizes every layer with `backend`, then measures the NLL of `eval` through the float and
// the dequantized model.
BackendRun Run(Backend& backend, const ModelConfig& config, const CheckpointReader& reader,
               const LayerQuantSettings& settings, const std::vector<std::vector<int32_t>>& calib,
               const std::vector<std::vector<int32_t>>& eval) {
  BackendRun run;
  absl::StatusOr<Tensor> embedding = reader.LoadEmbedding();
  absl::StatusOr<Tensor> final_norm = reader.LoadFinalNorm();
  absl::StatusOr<Tensor> lm_head = reader.LoadLmHead(config);
  if (!embedding.ok() || !final_norm.ok() || !lm_head.ok()) {
    ADD_FAILURE() << "cannot read the model's embedding, norm or lm_head";
    return run;
  }
  auto hidden = backend.Embed(*embedding, calib);
  auto float_eval = backend.Embed(*embedding, eval);
  auto quant_eval = backend.Embed(*embedding, eval);
  if (!hidden.ok() || !float_eval.ok() || !quant_eval.ok()) {
    ADD_FAILURE() << "Embed failed on " << backend.name();
    return run;
  }
  for (int l = 0; l < config.num_hidden_layers; ++l) {
    absl::StatusOr<LayerWeights> w = reader.LoadLayer(config, l);
    if (!w.ok()) {
      ADD_FAILURE() << w.status();
      return run;
    }
    if (absl::Status s = backend.ForwardLayer(config, settings.md, *w, float_eval->get());
        !s.ok()) {
      ADD_FAILURE() << backend.name() << " ForwardLayer: " << s;
      return run;
    }
    absl::StatusOr<QuantizedLayer> q =
        backend.QuantizeLayer(config, settings, *std::move(w), hidden->get(), nullptr);
    if (!q.ok()) {
      ADD_FAILURE() << backend.name() << " QuantizeLayer " << l << ": " << q.status();
      return run;
    }
    if (absl::Status s =
            backend.ForwardLayer(config, settings.md, DequantizedLayer(*q), quant_eval->get());
        !s.ok()) {
      ADD_FAILURE() << backend.name() << " ForwardLayer (quantized): " << s;
      return run;
    }
    run.layers.push_back(*std::move(q));
  }
  const auto targets = Targets(eval);
  absl::StatusOr<double> f =
      backend.NextTokenNll(config, settings.md, *final_norm, *lm_head, **float_eval, targets);
  absl::StatusOr<double> qn =
      backend.NextTokenNll(config, settings.md, *final_norm, *lm_head, **quant_eval, targets);
  EXPECT_TRUE(f.ok() && qn.ok()) << backend.name() << " NextTokenNll failed";
  run.float_nll = f.ok() ? *f : 0.0;
  run.quant_nll = qn.ok() ? *qn : 0.0;
  return run;
}

void CompareBackends(const std::string& model_dir, const std::vector<std::vector<int32_t>>& calib,
                     const std::vector<std::vector<int32_t>>& eval, bool float_kv) {
  std::unique_ptr<Backend> cuda = CudaOrSkip();
  if (cuda == nullptr) GTEST_SKIP() << "no CUDA device (or a build without CUDA)";
  absl::StatusOr<ModelConfig> config = LoadModelConfig(model_dir);
  ASSERT_TRUE(config.ok()) << config.status();
  absl::StatusOr<std::unique_ptr<CheckpointReader>> reader = CheckpointReader::Open(model_dir);
  ASSERT_TRUE(reader.ok()) << reader.status();
  LayerQuantSettings settings;
  settings.md = config->dtype;
  settings.attention_trials_use_float_kv = float_kv;

  std::unique_ptr<Backend> cpu = CreateCpuBackend();
  const BackendRun ref = Run(*cpu, *config, **reader, settings, calib, eval);
  const BackendRun got = Run(*cuda, *config, **reader, settings, calib, eval);
  ASSERT_EQ(ref.layers.size(), got.layers.size());

  int groups = 0, same_groups = 0;
  int64_t clips = 0, same_clips = 0;
  for (size_t l = 0; l < ref.layers.size(); ++l) {
    const QuantizedLayer& a = ref.layers[l];
    const QuantizedLayer& b = got.layers[l];
    ASSERT_EQ(a.scaling.size(), b.scaling.size());
    for (size_t g = 0; g < a.scaling.size(); ++g) {
      EXPECT_EQ(a.scaling[g].label, b.scaling[g].label);
      ++groups;
      same_groups += a.scaling[g].ratio_index == b.scaling[g].ratio_index ? 1 : 0;
      std::printf("layer %zu %-70s cpu k=%2d cuda k=%2d  loss %.6g / %.6g\n", l,
                  a.scaling[g].label.c_str(), a.scaling[g].ratio_index, b.scaling[g].ratio_index,
                  a.scaling[g].loss, b.scaling[g].loss);
    }
    ASSERT_EQ(a.clips.size(), b.clips.size());
    for (size_t c = 0; c < a.clips.size(); ++c) {
      EXPECT_EQ(a.clips[c].linear, b.clips[c].linear);
      ASSERT_EQ(a.clips[c].shrink_index.size(), b.clips[c].shrink_index.size());
      for (size_t i = 0; i < a.clips[c].shrink_index.size(); ++i) {
        ++clips;
        same_clips += a.clips[c].shrink_index[i] == b.clips[c].shrink_index[i] ? 1 : 0;
      }
    }
    ASSERT_EQ(a.linears.size(), b.linears.size());
    for (size_t i = 0; i < a.linears.size(); ++i) {
      EXPECT_EQ(a.linears[i].packed.qweight.size(), b.linears[i].packed.qweight.size());
      EXPECT_EQ(a.linears[i].packed.scales.size(), b.linears[i].packed.scales.size());
    }
  }
  const double ratio_match = static_cast<double>(same_groups) / groups;
  const double clip_match = static_cast<double>(same_clips) / static_cast<double>(clips);
  std::printf("[parity] %s: ratios %d/%d (%.1f%%), clips %ld/%ld (%.2f%%)\n", model_dir.c_str(),
              same_groups, groups, 100 * ratio_match, static_cast<long>(same_clips),
              static_cast<long>(clips), 100 * clip_match);
  std::printf("[parity] float NLL cpu %.6f cuda %.6f; quantized NLL cpu %.6f cuda %.6f\n",
              ref.float_nll, got.float_nll, ref.quant_nll, got.quant_nll);
  EXPECT_GE(ratio_match, 0.95);
  EXPECT_GE(clip_match, 0.95);
  EXPECT_TRUE(std::isfinite(got.float_nll) && std::isfinite(got.quant_nll));
  EXPECT_NEAR(got.float_nll, ref.float_nll, 0.005 * std::fabs(ref.float_nll));
  EXPECT_NEAR(got.quant_nll, ref.quant_nll, 0.005 * std::fabs(ref.quant_nll));
}

TEST(CudaBackendGpuTest, MatchesCpuOnLlamaMhaFixture) {
  const std::string dir = SharedDir() + "/fixtures/autoawq-parity/llama-mha";
  absl::StatusOr<std::vector<std::vector<int32_t>>> calib =
      testing::ReadInputIdRows(dir + "/calib.jsonl");
  ASSERT_TRUE(calib.ok()) << calib.status();
  const std::vector<std::vector<int32_t>> eval(calib->begin(), calib->begin() + 4);
  CompareBackends(dir + "/model", *calib, eval, /*float_kv=*/false);
}

TEST(CudaBackendGpuTest, MatchesCpuOnLlamaMhaFixtureWithFloatKvTrials) {
  const std::string dir = SharedDir() + "/fixtures/autoawq-parity/llama-mha";
  absl::StatusOr<std::vector<std::vector<int32_t>>> calib =
      testing::ReadInputIdRows(dir + "/calib.jsonl");
  ASSERT_TRUE(calib.ok()) << calib.status();
  const std::vector<std::vector<int32_t>> eval(calib->begin(), calib->begin() + 4);
  CompareBackends(dir + "/model", *calib, eval, /*float_kv=*/true);
}

TEST(CudaBackendGpuTest, MatchesCpuOnTinyQwen2Gqa) {
  // GQA, q/k/v bias, tied embeddings; random calibration tokens of its 4096-token vocabulary.
  CompareBackends(SharedDir() + "/assets/models/tiny-qwen2-wp/model",
                  RandomBlocks(16, 256, 4096, 7), RandomBlocks(4, 256, 4096, 11),
                  /*float_kv=*/false);
}

TEST(CudaBackendGpuTest, RejectsUnsupportedHeadDim) {
  std::unique_ptr<Backend> cuda = CudaOrSkip();
  if (cuda == nullptr) GTEST_SKIP() << "no CUDA device (or a build without CUDA)";
  ModelConfig config;
  config.hidden_size = 96;
  config.intermediate_size = 128;
  config.num_attention_heads = 3;
  config.num_key_value_heads = 3;
  config.head_dim = 32;
  config.num_hidden_layers = 1;
  LayerWeights w;
  w.input_layernorm = Tensor({96}, 1.0f);
  w.post_attention_layernorm = Tensor({96}, 1.0f);
  for (LinearWeights* l : {&w.q_proj, &w.k_proj, &w.v_proj, &w.o_proj})
    l->weight = Tensor({96, 96}, 0.01f);
  w.gate_proj.weight = Tensor({128, 96}, 0.01f);
  w.up_proj.weight = Tensor({128, 96}, 0.01f);
  w.down_proj.weight = Tensor({96, 128}, 0.01f);
  auto hidden = cuda->Embed(Tensor({8, 96}, 0.5f), RandomBlocks(2, 16, 8, 1));
  ASSERT_TRUE(hidden.ok());
  LayerQuantSettings settings;
  settings.group_size = 32;
  absl::StatusOr<QuantizedLayer> q =
      cuda->QuantizeLayer(config, settings, std::move(w), hidden->get(), nullptr);
  ASSERT_FALSE(q.ok());
  EXPECT_NE(std::string(q.status().message()).find("head_dim"), std::string::npos) << q.status();
}

}  // namespace
}  // namespace quantd::engine
