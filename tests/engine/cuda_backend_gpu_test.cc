// The CUDA backend against the CPU reference, through the Backend interface, on the test-data
// models and on every supported family at its real geometry (layers, vocabulary and windows cut):
// the same scaling-group ratios and clip choices (≥ 95 %), the same float-model NLL and the same
// quantized-model NLL (within 0.5 %). Built only with the CUDA backend; skips itself where no GPU
// is present.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "awq/scaling_groups.h"
#include "backend/backend.h"
#include "backend/cpu/cpu_backend.h"
#include "cuda/cuda_backend.h"
#include "gtest/gtest.h"
#include "io/checkpoint_reader.h"
#include "model/model_config.h"
#include "model/registry.h"
#include "testing/awq_test_safetensors.h"
#include "testing/family_models.h"
#include "testing/io_random_model.h"
#include "testing/io_temp_dir.h"
#include "tests/testing/test_data.h"

namespace quantd::engine {
namespace {

std::unique_ptr<Backend> CudaOrSkip(const CudaBackendOptions& options = {}) {
  if (!CudaDeviceAvailable()) return nullptr;
  absl::StatusOr<std::unique_ptr<Backend>> b = CreateCudaBackend(options);
  if (!b.ok()) {
    ADD_FAILURE() << b.status();
    return nullptr;
  }
  return std::move(*b);
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
  ScaleEmbeddingRows(config, settings.md, &*embedding);  // Gemma: × √hidden
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

// How many scaling-group ratios and clip choices two runs share. A group whose ratios differ on a
// near-tie — each backend's own loss at the other's choice within kNearTie of its best — counts as
// agreeing: the backends' arithmetic differs by about that much (md operands, summation order), so
// on a flat curve either choice is the argmin. The Linears such a group rescales (its own and its
// previous op's) are then clipped on other weights, so their clip choices are not compared; any
// other difference counts against the backends.
constexpr double kNearTie = 0.002;

struct Agreement {
  int groups = 0, same_groups = 0, tied_groups = 0;
  int64_t clips = 0, same_clips = 0, rescaled_clips = 0;
  double ratios() const { return static_cast<double>(same_groups + tied_groups) / groups; }
  double clip_choices() const { return static_cast<double>(same_clips) / clips; }
};

// (loss at k_other − loss at k_best) / loss at k_best on one backend's grid.
double ExcessAt(const ScalingDecision& d, int k_other) {
  const double best = d.losses[static_cast<size_t>(d.ratio_index)];
  return (d.losses[static_cast<size_t>(k_other)] - best) / best;
}

Agreement Compare(const ModelConfig& config, const BackendRun& ref, const BackendRun& got) {
  Agreement r;
  const std::vector<ScalingGroup> groups = ScalingGroupsOf(config);
  EXPECT_EQ(ref.layers.size(), got.layers.size());
  for (size_t l = 0; l < std::min(ref.layers.size(), got.layers.size()); ++l) {
    const QuantizedLayer& a = ref.layers[l];
    const QuantizedLayer& b = got.layers[l];
    std::set<std::string> rescaled;  // Linears a tied group folded other scales into
    EXPECT_EQ(a.scaling.size(), b.scaling.size());
    for (size_t g = 0; g < std::min(a.scaling.size(), b.scaling.size()); ++g) {
      const ScalingDecision& da = a.scaling[g];
      const ScalingDecision& db = b.scaling[g];
      EXPECT_EQ(da.label, db.label);
      ++r.groups;
      const char* verdict = "";
      if (da.ratio_index == db.ratio_index) {
        ++r.same_groups;
      } else if (da.ratio_index >= 0 && db.ratio_index >= 0 && !da.losses.empty() &&
                 !db.losses.empty() && ExcessAt(da, db.ratio_index) <= kNearTie &&
                 ExcessAt(db, da.ratio_index) <= kNearTie) {
        ++r.tied_groups;
        verdict = "  (near-tie)";
        if (g < groups.size()) {
          rescaled.insert(groups[g].linears.begin(), groups[g].linears.end());
          rescaled.insert(groups[g].prev_op);
        }
      } else {
        verdict = "  (differs)";
      }
      std::printf("layer %zu %-70s k=%2d / k=%2d  loss %.6g / %.6g%s\n", l, da.label.c_str(),
                  da.ratio_index, db.ratio_index, da.loss, db.loss, verdict);
    }
    EXPECT_EQ(a.clips.size(), b.clips.size());
    for (size_t c = 0; c < std::min(a.clips.size(), b.clips.size()); ++c) {
      EXPECT_EQ(a.clips[c].linear, b.clips[c].linear);
      EXPECT_EQ(a.clips[c].shrink_index.size(), b.clips[c].shrink_index.size());
      const size_t n = std::min(a.clips[c].shrink_index.size(), b.clips[c].shrink_index.size());
      if (rescaled.contains(a.clips[c].linear)) {
        r.rescaled_clips += static_cast<int64_t>(n);
        continue;
      }
      int64_t same = 0;
      for (size_t i = 0; i < n; ++i) {
        same += a.clips[c].shrink_index[i] == b.clips[c].shrink_index[i] ? 1 : 0;
      }
      r.clips += static_cast<int64_t>(n);
      r.same_clips += same;
      if (n > 0 && same < static_cast<int64_t>(n)) {
        std::printf("layer %zu clips of %-40s %6.2f %% equal\n", l, a.clips[c].linear.c_str(),
                    100.0 * static_cast<double>(same) / static_cast<double>(n));
      }
    }
    EXPECT_EQ(a.linears.size(), b.linears.size());
    for (size_t i = 0; i < std::min(a.linears.size(), b.linears.size()); ++i) {
      EXPECT_EQ(a.linears[i].packed.qweight.size(), b.linears[i].packed.qweight.size());
      EXPECT_EQ(a.linears[i].packed.scales.size(), b.linears[i].packed.scales.size());
    }
  }
  return r;
}

struct ModelUnderTest {
  ModelConfig config;
  std::unique_ptr<CheckpointReader> reader;
  LayerQuantSettings settings;
};

std::optional<ModelUnderTest> OpenModel(const std::string& model_dir, bool float_kv) {
  absl::StatusOr<ModelConfig> config = LoadModelConfig(model_dir);
  EXPECT_TRUE(config.ok()) << config.status();
  absl::StatusOr<std::unique_ptr<CheckpointReader>> reader = CheckpointReader::Open(model_dir);
  EXPECT_TRUE(reader.ok()) << reader.status();
  if (!config.ok() || !reader.ok()) return std::nullopt;
  ModelUnderTest m{*config, std::move(*reader), {}};
  m.settings.md = config->compute_dtype;
  m.settings.attention_trials_use_float_kv = float_kv;
  return m;
}

// `tweak` (optional) changes the settings both backends run with.
void CompareBackends(const std::string& model_dir, const std::vector<std::vector<int32_t>>& calib,
                     const std::vector<std::vector<int32_t>>& eval, bool float_kv,
                     void (*tweak)(LayerQuantSettings*) = nullptr) {
  std::unique_ptr<Backend> cuda = CudaOrSkip();
  if (cuda == nullptr) GTEST_SKIP() << "no CUDA device";
  std::optional<ModelUnderTest> m = OpenModel(model_dir, float_kv);
  ASSERT_TRUE(m.has_value());
  if (tweak != nullptr) tweak(&m->settings);
  std::unique_ptr<Backend> cpu = CreateCpuBackend();
  const BackendRun ref = Run(*cpu, m->config, *m->reader, m->settings, calib, eval);
  const BackendRun got = Run(*cuda, m->config, *m->reader, m->settings, calib, eval);
  const Agreement a = Compare(m->config, ref, got);
  std::printf(
      "[parity] %s: ratios %d/%d equal, %d near-ties (%.1f%%), clips %ld/%ld (%.2f%%), %ld "
      "clips of near-tie groups' Linears not compared\n",
      model_dir.c_str(), a.same_groups, a.groups, a.tied_groups, 100 * a.ratios(),
      static_cast<long>(a.same_clips), static_cast<long>(a.clips), 100 * a.clip_choices(),
      static_cast<long>(a.rescaled_clips));
  std::printf("[parity] float NLL cpu %.6f cuda %.6f; quantized NLL cpu %.6f cuda %.6f\n",
              ref.float_nll, got.float_nll, ref.quant_nll, got.quant_nll);
  EXPECT_GE(a.ratios(), 0.95);
  EXPECT_GE(a.clip_choices(), 0.95);
  EXPECT_TRUE(std::isfinite(got.float_nll) && std::isfinite(got.quant_nll));
  EXPECT_NEAR(got.float_nll, ref.float_nll, 0.005 * std::fabs(ref.float_nll));
  EXPECT_NEAR(got.quant_nll, ref.quant_nll, 0.005 * std::fabs(ref.quant_nll));
}

// Activations worked on in token chunks — hidden states in pinned host memory, or on the device
// read from one copy and written to another — give the decisions of the resident run: the same
// samples, statistics and losses up to the summation order of the chunks.
void CompareChunkedWithResident(const std::string& model_dir,
                                const std::vector<std::vector<int32_t>>& calib,
                                const std::vector<std::vector<int32_t>>& eval) {
  std::unique_ptr<Backend> resident = CudaOrSkip();
  if (resident == nullptr) GTEST_SKIP() << "no CUDA device";
  std::optional<ModelUnderTest> m = OpenModel(model_dir, false);
  ASSERT_TRUE(m.has_value());
  const BackendRun ref = Run(*resident, m->config, *m->reader, m->settings, calib, eval);
  // 3 and 5 blocks per chunk: the last chunk is shorter than the others.
  for (const CudaBackendOptions& options :
       {CudaBackendOptions{3, true}, CudaBackendOptions{5, false}}) {
    std::unique_ptr<Backend> chunked = CudaOrSkip(options);
    ASSERT_NE(chunked, nullptr);
    const BackendRun got = Run(*chunked, m->config, *m->reader, m->settings, calib, eval);
    const Agreement a = Compare(m->config, ref, got);
    std::printf(
        "[chunked] %s, %lld blocks per chunk, hidden states %s: ratios %d/%d, clips "
        "%ld/%ld; float NLL %.6f / %.6f, quantized NLL %.6f / %.6f\n",
        model_dir.c_str(), static_cast<long long>(options.chunk_blocks),
        options.hidden_states_on_host ? "on the host" : "on the device", a.same_groups, a.groups,
        static_cast<long>(a.same_clips), static_cast<long>(a.clips), ref.float_nll, got.float_nll,
        ref.quant_nll, got.quant_nll);
    EXPECT_EQ(a.same_groups, a.groups);
    EXPECT_GE(a.clip_choices(), 0.999);
    EXPECT_NEAR(got.float_nll, ref.float_nll, 1e-5 * std::fabs(ref.float_nll));
    EXPECT_NEAR(got.quant_nll, ref.quant_nll, 1e-3 * std::fabs(ref.quant_nll));
  }
}

TEST(CudaBackendGpuTest, MatchesCpuOnLlamaMhaFixture) {
  const std::string dir = quantd::test_data::Path("fixtures/autoawq-parity/llama-mha");
  absl::StatusOr<std::vector<std::vector<int32_t>>> calib =
      testing::ReadInputIdRows(dir + "/calib.jsonl");
  ASSERT_TRUE(calib.ok()) << calib.status();
  const std::vector<std::vector<int32_t>> eval(calib->begin(), calib->begin() + 4);
  CompareBackends(dir + "/model", *calib, eval, /*float_kv=*/false);
}

TEST(CudaBackendGpuTest, MatchesCpuOnLlamaMhaFixtureWithFloatKvTrials) {
  const std::string dir = quantd::test_data::Path("fixtures/autoawq-parity/llama-mha");
  absl::StatusOr<std::vector<std::vector<int32_t>>> calib =
      testing::ReadInputIdRows(dir + "/calib.jsonl");
  ASSERT_TRUE(calib.ok()) << calib.status();
  const std::vector<std::vector<int32_t>> eval(calib->begin(), calib->begin() + 4);
  CompareBackends(dir + "/model", *calib, eval, /*float_kv=*/true);
}

TEST(CudaBackendGpuTest, MatchesCpuOnTinyQwen2Gqa) {
  // GQA, q/k/v bias, tied embeddings; random calibration tokens of its 4096-token vocabulary.
  CompareBackends(quantd::test_data::Path("models/tiny-qwen2-wp/model"),
                  RandomBlocks(16, 256, 4096, 7), RandomBlocks(4, 256, 4096, 11),
                  /*float_kv=*/false);
}

TEST(CudaBackendGpuTest, ChunkedActivationsMatchResidentOnLlamaMhaFixture) {
  const std::string dir = quantd::test_data::Path("fixtures/autoawq-parity/llama-mha");
  absl::StatusOr<std::vector<std::vector<int32_t>>> calib =
      testing::ReadInputIdRows(dir + "/calib.jsonl");
  ASSERT_TRUE(calib.ok()) << calib.status();
  const std::vector<std::vector<int32_t>> eval(calib->begin(), calib->begin() + 4);
  CompareChunkedWithResident(dir + "/model", *calib, eval);
}

TEST(CudaBackendGpuTest, ChunkedActivationsMatchResidentOnTinyQwen2Gqa) {
  CompareChunkedWithResident(quantd::test_data::Path("models/tiny-qwen2-wp/model"),
                             RandomBlocks(16, 256, 4096, 7), RandomBlocks(4, 256, 4096, 11));
}

// Each family at the geometry of its published config (tests/data/configs; Qwen2: Qwen2.5-0.5B),
// one layer — two where the family alternates kinds of layer (Gemma 2: sliding then global;
// Gemma 3: sliding then global) —, 2048-token vocabulary, windows of 64 under 128-token blocks
// (1 of calibration, 1 of evaluation), in bfloat16 (Qwen2: float16). The CPU reference of a 7B
// layer is most of the test's time on the device machine, hence no second layer of the same kind.
class CudaFamiliesGpuTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CudaFamiliesGpuTest, MatchesCpuAtRealGeometry) {
  if (CudaOrSkip() == nullptr) GTEST_SKIP() << "no CUDA device (or a build without CUDA)";
  const std::string family = GetParam();
  testing::IoTempDir dir;
  testing::RandomModelOptions o;
  const int layers = family.rfind("gemma", 0) == 0 ? 2 : 1;
  o.config = testing::RealGeometryConfig(family, layers, 2048, 64);
  o.output_dir = dir.Sub(family);
  o.dtype = family == "qwen2" ? DType::kF16 : DType::kBF16;
  o.seed = 11;
  o.outlier_channels = 8;
  ASSERT_TRUE(testing::WriteRandomModel(o).ok());
  // One calibration block keeps the CPU reference (7B geometries) short on the device machine.
  CompareBackends(o.output_dir, RandomBlocks(1, 128, 2048, 21), RandomBlocks(1, 128, 2048, 23),
                  /*float_kv=*/false);
}

INSTANTIATE_TEST_SUITE_P(All, CudaFamiliesGpuTest, ::testing::ValuesIn(testing::FamilyNames()),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

// MoE: the trained tiny-qwen3-moe-wp (8 experts, top-2, q/k norms) on random calibration tokens:
// 8 × 128 tokens give each expert about 256 rows, so every down_proj group is searched and every
// expert Linear clipped.
TEST(CudaBackendGpuTest, MatchesCpuOnTinyQwen3MoeWp) {
  CompareBackends(quantd::test_data::Path("models/tiny-qwen3-moe-wp/model"),
                  RandomBlocks(8, 128, 4096, 31), RandomBlocks(2, 128, 4096, 37),
                  /*float_kv=*/false);
}

// The same with AutoAWQ's router handling (router columns left unscaled, so routing moves) and a
// threshold above every expert's rows (256 tokens route 512 rows to 8 experts), so that every
// expert is under-calibrated: identity down_proj scales, no expert clip. (A threshold near the
// experts' counts makes the test flaky: a token whose top-k differs between the backends by one
// rounding of its router logits can move an expert across it — 92.5 % of ratios with 64 on the
// H200.)
TEST(CudaBackendGpuTest, MatchesCpuOnTinyQwen3MoeWpRouterUnscaledFewTokens) {
  CompareBackends(quantd::test_data::Path("models/tiny-qwen3-moe-wp/model"),
                  RandomBlocks(2, 128, 4096, 41), RandomBlocks(2, 128, 4096, 43),
                  /*float_kv=*/false, [](LayerQuantSettings* s) {
                    s->scale_router_inputs = false;
                    s->min_expert_tokens = 1000;
                  });
}

// Small random MoE models of each family (the CPU suite's miniatures, in float16: random routers
// put many tokens near a top-k tie, and bfloat16 logits tie far more often, so that one rounding
// difference between the backends' router GEMMs moves whole rows between experts — 10 of 12 ratios
// on the H200 with bfloat16 and 4 blocks; 16 blocks give each expert ~1000 rows): Qwen3-MoE,
// Qwen2-MoE with its gated shared expert and q/k/v bias, Mixtral stored with transformers 5's fused
// 3-D experts and a sliding window.
class CudaMoeGpuTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CudaMoeGpuTest, MatchesCpuOnSmallRandomModel) {
  if (CudaOrSkip() == nullptr) GTEST_SKIP() << "no CUDA device (or a build without CUDA)";
  const std::string family = GetParam();
  testing::IoTempDir dir;
  testing::RandomModelOptions o;
  o.config = testing::MiniatureConfig(family);
  o.output_dir = dir.Sub(family);
  o.dtype = DType::kF16;
  o.seed = 13;
  o.outlier_channels = 4;
  o.fused_experts = testing::FusedExperts(family);
  ASSERT_TRUE(testing::WriteRandomModel(o).ok());
  CompareBackends(o.output_dir, RandomBlocks(16, 128, 256, 47), RandomBlocks(2, 128, 256, 53),
                  /*float_kv=*/false);
}

INSTANTIATE_TEST_SUITE_P(All, CudaMoeGpuTest,
                         ::testing::Values("qwen3_moe", "qwen2_moe", "mixtral"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

TEST(CudaBackendGpuTest, RejectsUnsupportedHeadDim) {
  std::unique_ptr<Backend> cuda = CudaOrSkip();
  if (cuda == nullptr) GTEST_SKIP() << "no CUDA device";
  ModelConfig config;
  config.arch = FindArchitecture("LlamaForCausalLM");
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
