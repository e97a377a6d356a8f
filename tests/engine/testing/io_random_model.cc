#include "io_random_model.h"

#include <algorithm>
#include <random>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "export/checkpoint_writer.h"
#include "io/file_util.h"
#include "io/moe_checkpoint.h"
#include "io/status_macros.h"
#include "model/architecture.h"
#include "model/moe_layout.h"

namespace quantd::engine::testing {
namespace {

bool IsNorm(const std::string& name) { return absl::EndsWith(name, "norm.weight"); }

}  // namespace

nlohmann::json TinyConfig(const std::string& architecture, bool tied) {
  nlohmann::json c = {{"architectures", {architecture}},
                      {"hidden_size", 64},
                      {"intermediate_size", 128},
                      {"num_hidden_layers", 2},
                      {"num_attention_heads", 4},
                      {"num_key_value_heads", 2},
                      {"vocab_size", 96},
                      {"max_position_embeddings", 512},
                      {"rms_norm_eps", 1e-6},
                      {"rope_theta", 10000.0},
                      {"hidden_act", "silu"},
                      {"tie_word_embeddings", tied},
                      {"torch_dtype", "float16"},
                      {"bos_token_id", 1},
                      {"eos_token_id", 2}};
  if (architecture == "Qwen3ForCausalLM") c["head_dim"] = 32;
  // MoE: 2 experts (1 per token) of width 64; Qwen3-MoE's q/k norms, Qwen2-MoE's shared expert.
  if (architecture == "Qwen3MoeForCausalLM" || architecture == "Qwen2MoeForCausalLM") {
    c.update({{"num_experts", 2}, {"num_experts_per_tok", 1}, {"moe_intermediate_size", 64}});
    if (architecture == "Qwen3MoeForCausalLM") c["head_dim"] = 32;
    if (architecture == "Qwen2MoeForCausalLM") c["shared_expert_intermediate_size"] = 128;
  }
  if (architecture == "MixtralForCausalLM") {
    c.update({{"num_local_experts", 2}, {"num_experts_per_tok", 1}});
  }
  if (architecture == "Gemma2ForCausalLM" || architecture == "Gemma3ForCausalLM") {
    c["hidden_act"] = "gelu_pytorch_tanh";
    c["head_dim"] = 32;
    c["query_pre_attn_scalar"] = 32;
    c["sliding_window"] = 16;
    if (architecture == "Gemma2ForCausalLM") {
      c["attn_logit_softcapping"] = 50.0;
      c["final_logit_softcapping"] = 30.0;
    } else {
      c["sliding_window_pattern"] = 2;
      c["rope_local_base_freq"] = 10000.0;
      c["rope_theta"] = 1000000.0;
    }
  }
  return c;
}

absl::Status WriteRandomModel(const RandomModelOptions& options) {
  nlohmann::json config_json = options.config;
  const char* dtype_name = options.dtype == DType::kBF16  ? "bfloat16"
                           : options.dtype == DType::kF32 ? "float32"
                                                          : "float16";
  if (config_json.contains("dtype")) {
    config_json["dtype"] = dtype_name;
  } else {
    config_json["torch_dtype"] = dtype_name;
  }
  QUANTD_ASSIGN_OR_RETURN(ModelConfig config, ParseModelConfig(config_json, "random config"));
  QUANTD_RETURN_IF_ERROR(EnsureDirectory(options.output_dir, "output_dir"));

  std::vector<PlannedTensor> plan;
  auto add = [&](const std::vector<TensorSpec>& specs) {
    for (const TensorSpec& s : specs) plan.push_back({s.name, options.dtype, s.shape});
  };
  std::vector<TensorSpec> globals = SourceGlobalTensors(config);
  add({globals[0]});
  for (int layer = 0; layer < config.num_hidden_layers; ++layer) {
    if (!options.fused_experts || !config.moe.enabled()) {
      add(SourceLayerTensors(config, layer));
      continue;
    }
    // transformers 5.x's fused experts, where the router was.
    for (const LayerTensorSpec& t : config.arch->layer_tensors(config)) {
      if (t.name == RouterName(config.moe.style)) add(FusedExpertTensors(config, layer));
      if (FromFusedExperts(config, t.name)) continue;
      add({{LayerTensorName(layer, t.name + ".weight"), t.shape}});
      if (t.bias) add({{LayerTensorName(layer, t.name + ".bias"), {t.shape[0]}}});
    }
  }
  add({globals.begin() + 1, globals.end()});

  StagedFiles staged(options.output_dir);
  std::map<std::string, std::string> dropped;
  if (config.tie_word_embeddings) dropped[kLmHeadName] = kEmbedTokensName;
  QUANTD_ASSIGN_OR_RETURN(
      std::unique_ptr<CheckpointWriter> writer,
      CheckpointWriter::Create(&staged, plan, std::move(dropped), options.max_shard_bytes));

  std::mt19937_64 rng(options.seed);
  std::set<int64_t> outliers;
  std::mt19937_64 pick(options.seed ^ 0x9e3779b97f4a7c15ull);
  while (static_cast<int64_t>(outliers.size()) <
         std::min<int64_t>(std::max(options.outlier_channels, 0), config.hidden_size)) {
    outliers.insert(static_cast<int64_t>(pick() % static_cast<uint64_t>(config.hidden_size)));
  }
  // Tensors are generated and written a slice at a time, so memory stays bounded however large
  // the geometry (a 7B embedding is 545M values).
  constexpr int64_t kSlice = 1 << 20;
  const int threads = std::max(1, options.threads);
  std::vector<std::vector<float>> slices(static_cast<size_t>(threads));
  for (size_t ti = 0; ti < plan.size(); ++ti) {
    const PlannedTensor& t = plan[ti];
    const int64_t n = Tensor::NumElements(t.shape);
    const bool norm = IsNorm(t.name);
    // Weights ~ N(0, 1/sqrt(fan_in)) keep activations O(1) through the layers; norms near 1.
    const double fan_in = t.shape.size() >= 2 ? static_cast<double>(t.shape.back()) : 64.0;
    const float sigma = static_cast<float>(1.0 / std::sqrt(fan_in));
    auto fill = [&](std::mt19937_64& gen, int64_t first, std::vector<float>* slice) {
      std::normal_distribution<float> normal(0.0f, sigma);
      std::uniform_real_distribution<float> near_one(0.8f, 1.2f);
      slice->resize(static_cast<size_t>(std::min(kSlice, n - first)));
      for (float& v : *slice) v = norm ? near_one(gen) : normal(gen);
      // Planted outliers: the same channels in every hidden-size norm, so activations carry them.
      if (norm && n == config.hidden_size) {
        for (int64_t c : outliers) (*slice)[static_cast<size_t>(c)] *= options.outlier_scale;
      }
    };
    // threads == 1: one stream continued across slices and tensors (the distributions too: the
    // normal one caches its second value), as before the option existed.
    std::normal_distribution<float> normal(0.0f, sigma);
    std::uniform_real_distribution<float> near_one(0.8f, 1.2f);
    for (int64_t first = 0; first < n; first += kSlice * threads) {
      const int count =
          static_cast<int>(std::min<int64_t>(threads, (n - first + kSlice - 1) / kSlice));
      if (threads == 1) {
        slices[0].resize(static_cast<size_t>(std::min(kSlice, n - first)));
        for (float& v : slices[0]) v = norm ? near_one(rng) : normal(rng);
        if (norm && n == config.hidden_size) {
          for (int64_t c : outliers) slices[0][static_cast<size_t>(c)] *= options.outlier_scale;
        }
      } else {
        std::vector<std::thread> pool;
        for (int i = 0; i < count; ++i) {
          pool.emplace_back([&, i] {
            const int64_t at = first + int64_t{i} * kSlice;
            std::seed_seq seq{options.seed, static_cast<uint64_t>(ti), static_cast<uint64_t>(at)};
            std::mt19937_64 gen(seq);
            fill(gen, at, &slices[static_cast<size_t>(i)]);
          });
        }
        for (std::thread& th : pool) th.join();
      }
      for (int i = 0; i < count; ++i) {
        QUANTD_RETURN_IF_ERROR(writer->WriteFloatPart(t.name, first + int64_t{i} * kSlice,
                                                      slices[static_cast<size_t>(i)]));
      }
    }
  }
  QUANTD_RETURN_IF_ERROR(writer->Finish());
  QUANTD_RETURN_IF_ERROR(staged.AddContent("config.json", config_json.dump(2) + "\n"));
  return staged.Commit();
}

}  // namespace quantd::engine::testing
