#include "family_models.h"

#include <fstream>
#include <random>

#include "io/json_file.h"
#include "tests/testing/test_data.h"

namespace quantd::engine::testing {
namespace {

nlohmann::json Base(const char* hf_class) {
  return {{"architectures", {hf_class}},
          {"hidden_size", 128},
          {"intermediate_size", 256},
          {"num_hidden_layers", 2},
          // head_dim 64: the smallest the CUDA attention takes (the CUDA checkpoint test runs
          // every miniature on both backends).
          {"num_attention_heads", 2},
          {"num_key_value_heads", 1},
          {"vocab_size", 256},
          {"max_position_embeddings", 1024},
          {"rms_norm_eps", 1e-6},
          {"rope_theta", 10000.0},
          {"hidden_act", "silu"},
          {"tie_word_embeddings", false},
          {"torch_dtype", "bfloat16"},
          {"bos_token_id", 1},
          {"eos_token_id", 2}};
}

nlohmann::json Gemma(const char* hf_class) {
  nlohmann::json c = Base(hf_class);
  c["hidden_act"] = "gelu_pytorch_tanh";
  c["hidden_activation"] = "gelu_pytorch_tanh";
  c["num_attention_heads"] = 2;
  c["num_key_value_heads"] = 1;
  c["head_dim"] = 256;
  c["query_pre_attn_scalar"] = 224;  // not head_dim: the scale must come from here
  c["sliding_window"] = 24;
  c.erase("tie_word_embeddings");  // Gemma's default: tied
  return c;
}

}  // namespace

std::vector<std::string> FamilyNames() {
  return {"llama",       "qwen2", "mistral",   "qwen3",     "gemma2",
          "gemma3_text", "phi3",  "qwen3_moe", "qwen2_moe", "mixtral"};
}

nlohmann::json MiniatureConfig(const std::string& family) {
  if (family == "llama") {  // Llama 3.2: llama3 RoPE, tied embeddings
    nlohmann::json c = Base("LlamaForCausalLM");
    c["rope_theta"] = 500000.0;
    c["rope_scaling"] = {{"rope_type", "llama3"},
                         {"factor", 32.0},
                         {"low_freq_factor", 1.0},
                         {"high_freq_factor", 4.0},
                         {"original_max_position_embeddings", 8192}};
    c["tie_word_embeddings"] = true;
    return c;
  }
  if (family == "qwen2") {
    nlohmann::json c = Base("Qwen2ForCausalLM");
    c["torch_dtype"] = "float16";
    return c;
  }
  if (family == "mistral") {
    nlohmann::json c = Base("MistralForCausalLM");
    c["sliding_window"] = 24;
    return c;
  }
  if (family == "qwen3") {
    nlohmann::json c = Base("Qwen3ForCausalLM");
    c["num_attention_heads"] = 4;
    c["num_key_value_heads"] = 2;
    c["head_dim"] = 64;  // != hidden / heads, as Qwen3-0.6B
    c["tie_word_embeddings"] = true;
    return c;
  }
  if (family == "gemma2") {
    nlohmann::json c = Gemma("Gemma2ForCausalLM");
    c["attn_logit_softcapping"] = 50.0;
    c["final_logit_softcapping"] = 30.0;
    return c;
  }
  if (family == "gemma3_text") {
    nlohmann::json c = Gemma("Gemma3ForCausalLM");
    c["model_type"] = "gemma3_text";
    c["layer_types"] = {"sliding_attention", "full_attention"};
    c["rope_local_base_freq"] = 10000.0;
    c["rope_theta"] = 1000000.0;
    c["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 8.0}};
    return c;
  }
  if (family == "phi3") {
    nlohmann::json c = Base("Phi3ForCausalLM");
    c["num_key_value_heads"] = 2;  // plain MHA, as Phi-3-mini
    c["sliding_window"] = 40;
    return c;
  }
  if (family == "qwen3_moe") {  // Qwen3-MoE: q/k norms, renormalised top-k
    nlohmann::json c = Base("Qwen3MoeForCausalLM");
    c.update({{"head_dim", 64},
              {"num_attention_heads", 4},
              {"num_key_value_heads", 2},
              {"num_experts", 4},
              {"num_experts_per_tok", 2},
              {"moe_intermediate_size", 128},
              {"norm_topk_prob", true},
              {"decoder_sparse_step", 1},
              {"mlp_only_layers", nlohmann::json::array()},
              {"tie_word_embeddings", true}});
    return c;
  }
  if (family == "qwen2_moe") {  // Qwen1.5-MoE: q/k/v bias, gated shared expert, raw top-k weights
    nlohmann::json c = Base("Qwen2MoeForCausalLM");
    c.update({{"torch_dtype", "float16"},
              {"num_experts", 4},
              {"num_experts_per_tok", 2},
              {"moe_intermediate_size", 128},
              {"shared_expert_intermediate_size", 256},
              {"norm_topk_prob", false},
              {"num_attention_heads", 2},  // head_dim 64: the CUDA attention's smallest
              {"num_key_value_heads", 2}});
    return c;
  }
  if (family == "mixtral") {  // written with fused experts (FusedExperts)
    nlohmann::json c = Base("MixtralForCausalLM");
    c.update({{"intermediate_size", 128},
              {"num_local_experts", 4},
              {"num_experts_per_tok", 2},
              {"num_attention_heads", 2},  // head_dim 64: the CUDA attention's smallest
              {"num_key_value_heads", 1}});
    c["sliding_window"] = 24;
    return c;
  }
  return {};
}

bool FusedExperts(const std::string& family) { return family == "mixtral"; }

nlohmann::json RealGeometryConfig(const std::string& family, int layers, int vocab, int window) {
  static const std::pair<const char*, const char*> kFiles[] = {
      {"llama", "llama-3.1-8b"},      {"mistral", "mistral-7b-v0.1"},
      {"qwen3", "qwen3-0.6b"},        {"gemma2", "gemma-2-2b"},
      {"gemma3_text", "gemma-3-1b"},  {"phi3", "phi-3-mini-4k-instruct"},
      {"qwen3_moe", "qwen3-30b-a3b"}, {"mixtral", "mixtral-8x7b-v0.1"}};
  nlohmann::json c;
  for (const auto& [name, file] : kFiles) {
    if (family != name) continue;
    c = *ReadJsonFile(test_data::Path(std::string("configs/") + file + ".config.json"));
  }
  if (family == "qwen2") {  // Qwen2.5-0.5B's geometry
    c = Base("Qwen2ForCausalLM");
    c.update({{"hidden_size", 896},
              {"intermediate_size", 4864},
              {"num_attention_heads", 14},
              {"num_key_value_heads", 2},
              {"rope_theta", 1000000.0},
              {"tie_word_embeddings", true}});
  }
  if (family == "qwen2_moe") {  // Qwen1.5-MoE-A2.7B's geometry
    c = Base("Qwen2MoeForCausalLM");
    c.update({{"hidden_size", 2048},
              {"intermediate_size", 5632},
              {"num_attention_heads", 16},
              {"num_key_value_heads", 16},
              {"num_experts", 60},
              {"num_experts_per_tok", 4},
              {"moe_intermediate_size", 1408},
              {"shared_expert_intermediate_size", 5632},
              {"norm_topk_prob", false},
              {"rope_theta", 1000000.0}});
  }
  c["num_hidden_layers"] = layers;
  c["vocab_size"] = vocab;
  if (c.contains("sliding_window") && !c["sliding_window"].is_null()) c["sliding_window"] = window;
  if (family == "gemma3_text") {
    c["layer_types"] = nlohmann::json::array();
    for (int l = 0; l < layers; ++l) {
      c["layer_types"].push_back(l + 1 == layers ? "full_attention" : "sliding_attention");
    }
  }
  return c;
}

void WriteRandomTokenRows(const std::string& path, int rows, int len, int vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> id(0, vocab - 1);
  std::ofstream out(path);
  for (int r = 0; r < rows; ++r) {
    nlohmann::json ids = nlohmann::json::array();
    for (int t = 0; t < len; ++t) ids.push_back(id(rng));
    out << nlohmann::json{{"input_ids", ids}}.dump() << "\n";
  }
}

}  // namespace quantd::engine::testing
