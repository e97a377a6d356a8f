// Parity with AutoAWQ 0.2.9 on the shared fixture (fixtures/autoawq-parity/llama-mha): the CPU
// backend's search must pick the same duo-scaling ratio for ≥ 90 % of scaling groups and the same
// clip shrink step for ≥ 95 % of (row, group) pairs as AutoAWQ did.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "awq/apply_scale.h"
#include "awq/clip_search.h"
#include "awq/scale_search.h"
#include "awq/scaling_groups.h"
#include "backend/backend.h"
#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/decoder_layer.h"
#include "gtest/gtest.h"
#include "model/model_config.h"
#include "quantd/engine/quantize.h"
#include "testing/awq_reader_run.h"
#include "testing/awq_test_safetensors.h"
#include "tests/testing/test_data.h"

namespace quantd::engine {
namespace {

const std::string kFixture = quantd::test_data::Path("fixtures/autoawq-parity/llama-mha");

LinearWeights LinearFrom(const std::map<std::string, testing::TestTensor>& t,
                         const std::string& name) {
  return LinearWeights{t.at(name + ".weight").AsTensor(), std::nullopt};
}

LayerWeights LayerFrom(const std::map<std::string, testing::TestTensor>& t, int layer) {
  const std::string p = absl::StrCat("model.layers.", layer, ".");
  LayerWeights w;
  w.input_layernorm = t.at(p + "input_layernorm.weight").AsTensor();
  w.post_attention_layernorm = t.at(p + "post_attention_layernorm.weight").AsTensor();
  w.q_proj = LinearFrom(t, p + "self_attn.q_proj");
  w.k_proj = LinearFrom(t, p + "self_attn.k_proj");
  w.v_proj = LinearFrom(t, p + "self_attn.v_proj");
  w.o_proj = LinearFrom(t, p + "self_attn.o_proj");
  w.gate_proj = LinearFrom(t, p + "mlp.gate_proj");
  w.up_proj = LinearFrom(t, p + "mlp.up_proj");
  w.down_proj = LinearFrom(t, p + "mlp.down_proj");
  return w;
}

// The grid index k whose ratio k/20 reproduces AutoAWQ's scale vector best: AutoAWQ's normalised
// scales are x_mean^r / w_mean^(1-r) up to a constant, so compare log-ratios after removing their
// means (robust to tiny differences in the statistics).
int MatchingRatio(const std::vector<float>& ours_at_k0_to_19_flat, const std::vector<float>& theirs,
                  size_t c) {
  int best = -1;
  double best_err = 1e300;
  for (int k = 0; k < kScaleGridPoints; ++k) {
    double mean = 0.0;
    std::vector<double> d(c);
    for (size_t j = 0; j < c; ++j) {
      d[j] = std::log(ours_at_k0_to_19_flat[k * c + j]) - std::log(theirs[j]);
      mean += d[j];
    }
    mean /= static_cast<double>(c);
    double err = 0.0;
    for (size_t j = 0; j < c; ++j) err += (d[j] - mean) * (d[j] - mean);
    if (err < best_err) {
      best_err = err;
      best = k;
    }
  }
  return best;
}

// AutoAWQ's clip choice per (row, group): the shrink step i (bound = max|w| · (1 − i/20), rounded
// to md) that reproduces its recorded bound from its own scaled weights; -1 if none does. Comparing
// steps rather than bound values keeps a 1-ulp difference in a scale vector (which moves max|w|)
// from counting as a different choice.
std::vector<int> AutoAwqShrinkSteps(const Tensor& scaled_w, const std::vector<float>& bounds,
                                    int64_t group, DType md) {
  const int64_t rows = scaled_w.dim(0);
  const int64_t groups = scaled_w.dim(1) / group;
  std::vector<int> steps(static_cast<size_t>(rows * groups), -1);
  for (int64_t o = 0; o < rows; ++o) {
    for (int64_t g = 0; g < groups; ++g) {
      float amax = 0.0f;
      for (int64_t j = 0; j < group; ++j) {
        amax = std::max(
            amax,
            std::fabs(scaled_w.data[static_cast<size_t>(o * scaled_w.dim(1) + g * group + j)]));
      }
      const float bound = bounds[static_cast<size_t>(o * groups + g)];
      for (int i = 0; i < kClipShrinkSteps; ++i) {
        const float shrink = static_cast<float>(1.0 - static_cast<double>(i) / 20.0);
        if (RoundTo(md, amax * shrink) == bound) {
          steps[static_cast<size_t>(o * groups + g)] = i;
          break;
        }
      }
    }
  }
  return steps;
}

const Tensor& ClippedWeight(const LayerWeights& w, const std::string& linear) {
  if (linear == "self_attn.v_proj") return w.v_proj.weight;
  if (linear == "self_attn.o_proj") return w.o_proj.weight;
  if (linear == "mlp.gate_proj") return w.gate_proj.weight;
  if (linear == "mlp.up_proj") return w.up_proj.weight;
  return w.down_proj.weight;
}

struct ParityNumbers {
  double ratio_match = 0.0;
  double clip_match = 0.0;
};

// Runs the CPU backend's search over the fixture and compares every decision with AutoAWQ's.
ParityNumbers CompareSearchDecisions(bool attention_trials_use_float_kv) {
  ParityNumbers numbers;
  absl::StatusOr<ModelConfig> config = LoadModelConfig(kFixture + "/model");
  EXPECT_TRUE(config.ok()) << config.status();
  auto model = testing::ReadTestSafetensors(kFixture + "/model/model.safetensors");
  auto search = testing::ReadTestSafetensors(kFixture + "/autoawq_search.safetensors");
  auto blocks = testing::ReadInputIdRows(kFixture + "/calib.jsonl");
  if (!config.ok() || !model.ok() || !search.ok() || !blocks.ok()) {
    ADD_FAILURE() << "cannot read the fixture under " << kFixture;
    return numbers;
  }
  EXPECT_EQ(blocks->size(), 16u);

  std::unique_ptr<Backend> backend = CreateCpuBackend();
  auto hidden = backend->Embed(model->at("model.embed_tokens.weight").AsTensor(), *blocks);
  if (!hidden.ok()) {
    ADD_FAILURE() << hidden.status();
    return numbers;
  }
  LayerQuantSettings settings{128, config->dtype, true, attention_trials_use_float_kv};

  int groups = 0, groups_same = 0;
  int64_t clips = 0, clips_same = 0;
  for (int layer = 0; layer < config->num_hidden_layers; ++layer) {
    absl::StatusOr<QuantizedLayer> q =
        backend->QuantizeLayer(*config, settings, LayerFrom(*model, layer), hidden->get(), nullptr);
    if (!q.ok()) {
      ADD_FAILURE() << q.status();
      return numbers;
    }
    EXPECT_EQ(q->scaling.size(), 4u) << "MHA: the v_proj→o_proj group must be active";
    // The layer as AutoAWQ scaled it before clipping, to recover its shrink steps.
    LayerWeights theirs_scaled = LayerFrom(*model, layer);
    for (const ScalingGroup& g : ScalingGroupsOf(*config)) {
      ApplyGroupScales(
          g,
          search->at(absl::StrCat("layer", layer, ".scale.", absl::StrJoin(g.linears, "+"))).values,
          config->dtype, config->norm, &theirs_scaled);
    }
    for (const ScalingDecision& d : q->scaling) {
      const std::string linears = d.label.substr(d.label.find("->") + 2);
      const auto& theirs = search->at(absl::StrCat("layer", layer, ".scale.", linears)).values;
      EXPECT_EQ(theirs.size(), d.scales.size());
      const size_t c = theirs.size();
      std::vector<float> grid(kScaleGridPoints * c);
      for (int k = 0; k < kScaleGridPoints; ++k) {
        const std::vector<float> s = ScalesForRatio(
            d.x_mean, d.w_mean, static_cast<double>(k) / kScaleGridPoints, config->dtype);
        std::copy(s.begin(), s.end(), grid.begin() + static_cast<int64_t>(k * c));
      }
      const int their_k = MatchingRatio(grid, theirs, c);

      ++groups;
      groups_same += their_k == d.ratio_index ? 1 : 0;
      std::printf("layer %d %-60s ours k=%2d autoawq k=%2d (loss %.6g vs %.6g at theirs)\n", layer,
                  d.label.c_str(), d.ratio_index, their_k, d.loss, d.losses[their_k]);
    }
    for (const ClipDecision& d : q->clips) {
      const auto& theirs = search->at(absl::StrCat("layer", layer, ".clip.", d.linear)).values;
      const std::vector<int> their_steps =
          AutoAwqShrinkSteps(ClippedWeight(theirs_scaled, d.linear), theirs, 128, config->dtype);
      EXPECT_EQ(their_steps.size(), d.shrink_index.size());
      int64_t same = 0;
      for (size_t i = 0; i < their_steps.size(); ++i) {
        EXPECT_GE(their_steps[i], 0) << d.linear << " (row, group) " << i
                                     << ": AutoAWQ's bound is no shrink step of its own weights";
        same += their_steps[i] == d.shrink_index[i] ? 1 : 0;
      }
      clips += static_cast<int64_t>(theirs.size());
      clips_same += same;
      std::printf("layer %d clip %-20s %ld / %zu equal\n", layer, d.linear.c_str(), same,
                  theirs.size());
    }
  }
  numbers.ratio_match = static_cast<double>(groups_same) / groups;
  numbers.clip_match = static_cast<double>(clips_same) / static_cast<double>(clips);
  std::printf(
      "scaling groups with AutoAWQ's ratio: %d / %d (%.1f%%); clip choices equal: %ld / %ld "
      "(%.2f%%)\n",
      groups_same, groups, 100 * numbers.ratio_match, clips_same, clips, 100 * numbers.clip_match);
  return numbers;
}

// The fixture was made with transformers 5.17, where AutoAWQ's attention-group trials only see
// q_proj's error (see LayerQuantSettings::attention_trials_use_float_kv). Reproducing that, every
// ratio must match and ≥ 95 % of (row, group) clip choices (shrink steps) must be AutoAWQ's
// (95.5 % measured). The rest differ where our scale vectors differ from AutoAWQ's by 1–2 fp16 ulps
// in some channels (ClipChoicesGivenAutoAwqScales isolates the clip search: > 99.8 %).
TEST(ParityAutoAwqTest, SearchDecisionsMatchAutoAwqAsRun) {
  const ParityNumbers n = CompareSearchDecisions(/*attention_trials_use_float_kv=*/true);
  EXPECT_GE(n.ratio_match, 0.90);
  EXPECT_GE(n.clip_match, 0.95);
}

// The spec's search (whole self_attn output, transformers 4.51): the attention groups may pick
// another ratio than the fixture (6 / 8 groups agree); the MLP and Linear groups all agree.
TEST(ParityAutoAwqTest, SearchDecisionsWithWholeAttentionLoss) {
  const ParityNumbers n = CompareSearchDecisions(/*attention_trials_use_float_kv=*/false);
  EXPECT_GE(n.ratio_match, 0.75);
  EXPECT_GE(n.clip_match, 0.88);
}

// The clip search alone: with AutoAWQ's own scale vectors applied, ≥ 95 % of (row, group) clip
// bounds must be identical to AutoAWQ's.
TEST(ParityAutoAwqTest, ClipChoicesGivenAutoAwqScales) {
  absl::StatusOr<ModelConfig> config = LoadModelConfig(kFixture + "/model");
  ASSERT_TRUE(config.ok()) << config.status();
  auto model = testing::ReadTestSafetensors(kFixture + "/model/model.safetensors");
  auto search = testing::ReadTestSafetensors(kFixture + "/autoawq_search.safetensors");
  auto blocks = testing::ReadInputIdRows(kFixture + "/calib.jsonl");
  ASSERT_TRUE(model.ok() && search.ok() && blocks.ok());
  std::unique_ptr<Backend> backend = CreateCpuBackend();
  auto hidden = backend->Embed(model->at("model.embed_tokens.weight").AsTensor(), *blocks);
  ASSERT_TRUE(hidden.ok());
  const DType md = config->dtype;
  const LayerContext ctx{&*config, md, 128, MakeRopeTable(*config, 128, md)};
  int64_t total = 0, same = 0;
  for (int layer = 0; layer < config->num_hidden_layers; ++layer) {
    LayerWeights w = LayerFrom(*model, layer);
    LayerCapture cap;
    ForwardDecoderLayer(ctx, w, &static_cast<CpuActivations*>(hidden->get())->hidden(), &cap);
    Tensor* inputs[] = {&cap.attn_input, &cap.o_input, &cap.mlp_input, &cap.down_input};
    int gi = 0;
    for (const ScalingGroup& g : ScalingGroupsOf(*config)) {
      const auto& t =
          search->at(absl::StrCat("layer", layer, ".scale.", absl::StrJoin(g.linears, "+")));
      ApplyGroupScales(g, t.values, md, config->norm, &w);
      DivideInputs(t.values, md, inputs[gi++]);
    }
    const std::pair<const char*, std::pair<LinearWeights*, Tensor*>> clipped[] = {
        {"self_attn.v_proj", {&w.v_proj, &cap.attn_input}},
        {"self_attn.o_proj", {&w.o_proj, &cap.o_input}},
        {"mlp.gate_proj", {&w.gate_proj, &cap.mlp_input}},
        {"mlp.up_proj", {&w.up_proj, &cap.mlp_input}},
        {"mlp.down_proj", {&w.down_proj, &cap.down_input}}};
    for (const auto& [name, lw] : clipped) {
      ClipResult r = SearchBestClip(lw.first->weight, SampleClipTokens(*lw.second), 128, md);
      const auto& theirs = search->at(absl::StrCat("layer", layer, ".clip.", name)).values;
      int64_t eq = 0;
      for (size_t i = 0; i < theirs.size(); ++i) eq += theirs[i] == r.max_val.data[i];
      std::printf("layer %d clip %-18s %ld / %zu equal\n", layer, name, eq, theirs.size());
      total += static_cast<int64_t>(theirs.size());
      same += eq;
    }
  }
  const double match = static_cast<double>(same) / static_cast<double>(total);
  std::printf("clip choices equal given AutoAWQ's scales: %.2f%%\n", 100.0 * match);
  EXPECT_GE(match, 0.95);
}

// The independent numpy reader's relative logits error over the first 4 calibration rows, of the
// checkpoint in `quantized_dir` (empty: of round-to-nearest with group size 128).
double ReaderLogitsError(const std::string& quantized_dir) {
  testing::AwqReaderRun run;
  run.float_dir = kFixture + "/model";
  run.calib_jsonl = kFixture + "/calib.jsonl";
  run.quantized_dir = quantized_dir;
  absl::StatusOr<double> error = testing::ReaderRelativeLogitsError(run);
  if (!error.ok()) {
    ADD_FAILURE() << error.status();
    return 1e9;
  }
  return *error;
}

// End to end through Quantize(): the checkpoint, read back by the independent reader, must be no
// worse than AutoAWQ's own output (0.246) + 2 %.
TEST(ParityAutoAwqTest, QuantizedCheckpointLogitsErrorWithinAutoAwq) {
  const std::string out_dir = std::string(QUANTD_BINARY_DIR) + "/parity_autoawq_out";
  std::filesystem::remove_all(out_dir);
  QuantizeOptions options;
  options.model_dir = kFixture + "/model";
  options.output_dir = out_dir;
  options.calib_jsonl = kFixture + "/calib.jsonl";
  options.num_calib = 16;
  options.max_seq_len = 128;
  options.apply_chat_template = false;
  options.backend = BackendKind::kCpu;
  absl::StatusOr<QuantizeResult> result = Quantize(options, nullptr, nullptr);
  ASSERT_TRUE(result.ok()) << result.status();
  // The reader itself, on AutoAWQ's own checkpoint of the fixture: it must reproduce the 0.246
  // the fixture's README reports (the checkpoint is AutoAWQ's, the config ours).
  const std::string autoawq_dir = std::string(QUANTD_BINARY_DIR) + "/parity_autoawq_reference";
  std::filesystem::remove_all(autoawq_dir);
  std::filesystem::create_directories(autoawq_dir);
  std::filesystem::copy_file(out_dir + "/config.json", autoawq_dir + "/config.json");
  std::filesystem::create_symlink(kFixture + "/autoawq.safetensors",
                                  autoawq_dir + "/model.safetensors");
  const double autoawq = ReaderLogitsError(autoawq_dir);
  EXPECT_NEAR(autoawq, 0.246, 0.002);
  const double ours = ReaderLogitsError(out_dir);
  const double rtn = ReaderLogitsError("");
  std::printf("relative logits error: quantd %.4f, AutoAWQ %.4f (README 0.246), RTN %.4f\n", ours,
              autoawq, rtn);
  EXPECT_LE(ours, 0.246 * 1.02);
  EXPECT_LT(ours, rtn);
}

}  // namespace
}  // namespace quantd::engine
