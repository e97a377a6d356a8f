#include "io_output_format_checker.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/dtype.h"
#include "io/safetensors_file.h"
#include "nlohmann/json.hpp"

namespace quantd::engine::testing {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr const char* kSideFiles[] = {
    "generation_config.json",  "tokenizer.json",  "tokenizer_config.json",
    "special_tokens_map.json", "vocab.json",      "merges.txt",
    "added_tokens.json",       "tokenizer.model", "chat_template.jinja",
    "chat_template.json"};

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::optional<Json> ReadJson(const std::string& path) {
  if (!fs::is_regular_file(path)) return std::nullopt;
  Json j = Json::parse(Slurp(path), nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

std::string Shape(const std::vector<int64_t>& s) {
  return absl::StrCat("[", absl::StrJoin(s, ", "), "]");
}

// What one expected tensor must look like.
struct Expected {
  std::string dtype;
  std::vector<int64_t> shape;
};

class Checker {
 public:
  Checker(std::string out, std::string src, OutputFormatExpectations expect)
      : out_(std::move(out)), src_(std::move(src)), expect_(std::move(expect)) {}

  std::vector<std::string> Run() {
    if (!fs::is_directory(out_)) {
      Violation("directory", absl::StrCat(out_, " is not a directory"));
      return violations_;
    }
    std::optional<Json> source = ReadJson(src_ + "/config.json");
    std::optional<Json> config = ReadJson(out_ + "/config.json");
    if (!source || !config || !config->is_object()) {
      Violation("config", "config.json missing or not JSON (in the output or the source)");
      return violations_;
    }
    CheckConfig(*source, *config);
    CheckTempFiles();
    CheckSideFiles();
    CheckSeedFiles();
    std::map<std::string, Expected> expected = ExpectedTensors(*source);
    CheckWeights(expected, Tied(*source));
    return violations_;
  }

 private:
  void Violation(const std::string& rule, const std::string& what) {
    violations_.push_back(absl::StrCat(rule, ": ", what));
  }

  // Rules 1-3, 6 and "config.json keeps every field of the source config".
  void CheckConfig(const Json& source, const Json& config) {
    auto qc_it = config.find("quantization_config");
    if (qc_it == config.end() || !qc_it->is_object()) {
      Violation("quantization_config", "missing from config.json");
      return;
    }
    const Json& qc = *qc_it;
    if (qc.value("quant_method", Json()) != "awq") {
      Violation("quantization_config", "quant_method must be \"awq\"");
    }
    if (qc.value("bits", Json()) != 4) Violation("quantization_config", "bits must be 4");
    Json g = qc.value("group_size", Json());
    if (!g.is_number_integer() || (g != 32 && g != 64 && g != 128 && g != -1)) {
      Violation("quantization_config",
                absl::StrCat("group_size must be 32, 64, 128 or -1 (Marlin), found ", g.dump()));
    } else {
      group_size_ = g.get<int>();
      if (expect_.group_size && *expect_.group_size != group_size_) {
        Violation("quantization_config",
                  absl::StrCat("group_size ", group_size_, ", expected ", *expect_.group_size));
      }
    }
    if (qc.value("zero_point", Json()) != true) {
      Violation("quantization_config", "zero_point must be true");
    }
    if (qc.value("version", Json()) != "gemm") {
      Violation("quantization_config", "version must be \"gemm\"");
    }
    Json modules = qc.value("modules_to_not_convert", Json());
    if (modules.is_array()) {
      for (const Json& m : modules) {
        if (!m.is_string()) {
          Violation("quantization_config", "modules_to_not_convert holds a non-string");
        } else {
          not_converted_.push_back(m.get<std::string>());
        }
      }
    } else if (!modules.is_null()) {
      Violation("quantization_config", "modules_to_not_convert must be a list or null");
    }
    for (const auto& [key, value] : source.items()) {
      if (key == "torch_dtype" || key == "dtype" || key == "use_cache" ||
          key == "quantization_config") {
        continue;
      }
      if (!config.contains(key) || config.at(key) != value) {
        Violation("config", absl::StrCat("source field \"", key, "\" not preserved"));
      }
    }
    bool any_dtype = false;
    for (const char* key : {"torch_dtype", "dtype"}) {
      if (!config.contains(key)) continue;
      any_dtype = true;
      if (config.at(key) != expect_.float_dtype) {
        Violation("dtype", absl::StrCat("config.json ", key, " is ", config.at(key).dump(),
                                        ", expected \"", expect_.float_dtype, "\""));
      }
    }
    if (!any_dtype) Violation("dtype", "config.json has neither torch_dtype nor dtype");
  }

  // Rule 6: names must match on module-path boundaries, or they catch other modules.
  void CheckModuleNames(const std::vector<std::string>& modules) {
    for (const std::string& entry : not_converted_) {
      for (const std::string& module : modules) {
        for (size_t at = module.find(entry); at != std::string::npos;
             at = module.find(entry, at + 1)) {
          size_t end = at + entry.size();
          bool start_ok = at == 0 || module[at - 1] == '.';
          bool end_ok = end == module.size() || module[end] == '.';
          if (!start_ok || !end_ok) {
            Violation("modules_to_not_convert",
                      absl::StrCat("\"", entry, "\" also matches ", module,
                                   " as a substring; list full module names"));
          }
        }
      }
    }
  }

  bool NotConverted(const std::string& module) const {
    for (const std::string& m : not_converted_) {
      if (!m.empty() && module.find(m) != std::string::npos) return true;
    }
    return false;
  }

  // The source checkpoint's Linears and float tensors per layer, by the Hugging Face modeling
  // files of each family (names relative to the layer): Gemma 2/3 have four norms (and Gemma 3
  // q/k norms), Phi-3 fuses q/k/v into qkv_proj and gate/up into gate_up_proj.
  struct LayerLayout {
    std::vector<std::pair<std::string, std::pair<int64_t, int64_t>>> linears;  // name, out × in
    std::vector<std::pair<std::string, int64_t>> norms;
    // MoE: Linears that stay float whatever modules_to_not_convert says (router,
    // shared_expert_gate); the output must list them there, as vLLM's MoE loaders need.
    std::vector<std::pair<std::string, std::pair<int64_t, int64_t>>> float_linears;
    bool qkv_bias = false;
  };
  static LayerLayout LayoutOf(const Json& s) {
    auto num = [&](const char* k, int64_t d) { return s.value(k, Json(d)).get<int64_t>(); };
    const int64_t hidden = num("hidden_size", 0), inter = num("intermediate_size", 0);
    const int64_t heads = num("num_attention_heads", 1), kv = num("num_key_value_heads", heads);
    const int64_t head_dim = num("head_dim", hidden / std::max<int64_t>(heads, 1));
    const std::string arch = s.value("architectures", Json::array({""}))[0].get<std::string>();
    const std::string type = s.value("model_type", "");
    const bool gemma = arch == "Gemma2ForCausalLM" || arch == "Gemma3ForCausalLM";
    const bool mixtral = arch == "MixtralForCausalLM";
    const bool qwen2_moe = arch == "Qwen2MoeForCausalLM";
    const bool moe = mixtral || qwen2_moe || arch == "Qwen3MoeForCausalLM";
    const bool qk_norm =
        arch == "Qwen3ForCausalLM" || arch == "Gemma3ForCausalLM" || arch == "Qwen3MoeForCausalLM";
    LayerLayout l;
    l.qkv_bias = arch == "Qwen2ForCausalLM" || qwen2_moe;
    if (arch == "Phi3ForCausalLM") {
      l.linears = {{"self_attn.o_proj", {hidden, heads * head_dim}},
                   {"self_attn.qkv_proj", {(heads + 2 * kv) * head_dim, hidden}},
                   {"mlp.gate_up_proj", {2 * inter, hidden}},
                   {"mlp.down_proj", {hidden, inter}}};
    } else {
      l.linears = {{"self_attn.q_proj", {heads * head_dim, hidden}},
                   {"self_attn.k_proj", {kv * head_dim, hidden}},
                   {"self_attn.v_proj", {kv * head_dim, hidden}},
                   {"self_attn.o_proj", {hidden, heads * head_dim}},
                   {"mlp.gate_proj", {inter, hidden}},
                   {"mlp.up_proj", {inter, hidden}},
                   {"mlp.down_proj", {hidden, inter}}};
    }
    if (moe) {  // the sparse block replaces the MLP: per-expert Linears as the Hub names them
      l.linears.resize(4);
      const int64_t experts = num("num_experts", num("num_local_experts", 0));
      const int64_t ei = mixtral ? inter : num("moe_intermediate_size", 0);
      const std::string block = mixtral ? "block_sparse_moe" : "mlp";
      const char* gate = mixtral ? "w1" : "gate_proj";
      const char* up = mixtral ? "w3" : "up_proj";
      const char* down = mixtral ? "w2" : "down_proj";
      for (int64_t e = 0; e < experts; ++e) {
        const std::string x = absl::StrCat(block, ".experts.", e, ".");
        l.linears.push_back({x + gate, {ei, hidden}});
        l.linears.push_back({x + up, {ei, hidden}});
        l.linears.push_back({x + down, {hidden, ei}});
      }
      l.float_linears.push_back({block + ".gate", {experts, hidden}});
      if (qwen2_moe) {
        const int64_t si = num("shared_expert_intermediate_size", 0);
        l.linears.push_back({"mlp.shared_expert.gate_proj", {si, hidden}});
        l.linears.push_back({"mlp.shared_expert.up_proj", {si, hidden}});
        l.linears.push_back({"mlp.shared_expert.down_proj", {hidden, si}});
        l.float_linears.push_back({"mlp.shared_expert_gate", {1, hidden}});
      }
    }
    l.norms = {{"input_layernorm", hidden}, {"post_attention_layernorm", hidden}};
    if (gemma) {
      l.norms.push_back({"pre_feedforward_layernorm", hidden});
      l.norms.push_back({"post_feedforward_layernorm", hidden});
    }
    if (qk_norm) {
      l.norms.push_back({"self_attn.q_norm", head_dim});
      l.norms.push_back({"self_attn.k_norm", head_dim});
    }
    return l;
  }

  // tie_word_embeddings, whose default is true for Gemma's config classes and false for the others.
  static bool Tied(const Json& s) {
    const std::string arch = s.value("architectures", Json::array({""}))[0].get<std::string>();
    return s.value("tie_word_embeddings",
                   arch == "Gemma2ForCausalLM" || arch == "Gemma3ForCausalLM");
  }

  std::map<std::string, Expected> ExpectedTensors(const Json& s) {
    std::map<std::string, Expected> e;
    const std::string fd = expect_.float_dtype == "bfloat16" ? "BF16" : "F16";
    auto num = [&](const char* k, int64_t d) { return s.value(k, Json(d)).get<int64_t>(); };
    const int64_t hidden = num("hidden_size", 0);
    const int64_t vocab = num("vocab_size", 0), layers = num("num_hidden_layers", 0);
    const LayerLayout layout = LayoutOf(s);
    const int64_t g = group_size_ > 0 ? group_size_ : 0;
    std::vector<std::string> modules;
    e["model.embed_tokens.weight"] = {fd, {vocab, hidden}};
    e["model.norm.weight"] = {fd, {hidden}};
    if (!Tied(s)) e["lm_head.weight"] = {fd, {vocab, hidden}};
    for (int64_t l = 0; l < layers; ++l) {
      std::string p = absl::StrCat("model.layers.", l, ".");
      for (const auto& [name, size] : layout.norms) e[p + name + ".weight"] = {fd, {size}};
      for (const auto& [name, shape] : layout.float_linears) {
        const std::string m = p + name;
        e[m + ".weight"] = {fd, {shape.first, shape.second}};
        modules.push_back(m);
        if (!NotConverted(m)) {
          Violation("modules_to_not_convert",
                    absl::StrCat(m,
                                 " is kept in float but modules_to_not_convert does not list "
                                 "it; vLLM's AWQ MoE loaders would expect AWQ tensors"));
        }
      }
      std::vector<bool> quantized;
      for (size_t i = 0; i < layout.linears.size(); ++i) {
        const auto& [name, shape] = layout.linears[i];
        const int64_t out = shape.first, in = shape.second;
        const bool bias =
            layout.qkv_bias && name.rfind("self_attn.", 0) == 0 && name != "self_attn.o_proj";
        std::string m = p + name;
        modules.push_back(m);
        quantized.push_back(!NotConverted(m));
        if (quantized.back() && g > 0) {
          e[m + ".qweight"] = {"I32", {in, out / 8}};
          e[m + ".qzeros"] = {"I32", {in / g, out / 8}};
          e[m + ".scales"] = {"F16", {in / g, out}};
          if (bias) e[m + ".bias"] = {"F16", {out}};
          scales_.insert(m + ".scales");
          if (in % g != 0 || out % 8 != 0) {
            Violation("geometry", absl::StrCat(m, " has in ", in, ", out ", out,
                                               ": in % group_size and out % 8 must be 0"));
          }
        } else if (!quantized.back()) {
          e[m + ".weight"] = {fd, {out, in}};
          if (bias) e[m + ".bias"] = {fd, {out}};
        }
      }
      // Rule 5: fused q/k/v and gate/up are all quantized or all float (a fused source Linear is
      // one module, so only separate ones can break it).
      if (layout.linears.size() == 7) {
        if (!(quantized[0] == quantized[1] && quantized[1] == quantized[2])) {
          Violation("fused", p + "self_attn q/k/v are not all quantized or all float");
        }
        if (quantized[4] != quantized[5]) {
          Violation("fused", p + "mlp gate/up are not both quantized or both float");
        }
      }
    }
    CheckModuleNames(modules);
    return e;
  }

  // Rule 8 (file naming + index), rule 7 (tied), tensor names/shapes/dtypes, metadata.
  void CheckWeights(const std::map<std::string, Expected>& expected, bool tied) {
    static const std::regex kShard(R"(model-(\d{5})-of-(\d{5})\.safetensors)");
    std::vector<std::string> shards;
    for (const auto& e : fs::directory_iterator(out_)) {
      std::string n = e.path().filename().string();
      if (std::regex_match(n, kShard)) shards.push_back(n);
    }
    std::sort(shards.begin(), shards.end());
    const bool has_single = fs::exists(out_ + "/model.safetensors");
    std::optional<Json> index = ReadJson(out_ + "/model.safetensors.index.json");
    const bool has_index = fs::exists(out_ + "/model.safetensors.index.json");
    std::vector<std::string> files;
    std::map<std::string, std::string> index_metadata;
    std::map<std::string, std::string> weight_map;
    if (has_index) {
      if (has_single) Violation("shards", "both model.safetensors and an index exist");
      if (!index || !index->contains("weight_map") || !(*index)["weight_map"].is_object() ||
          !index->contains("metadata") || !(*index)["metadata"].is_object()) {
        Violation("shards", "model.safetensors.index.json lacks metadata / weight_map");
        return;
      }
      for (const auto& [k, v] : (*index)["metadata"].items()) {
        if (v.is_string()) index_metadata[k] = v.get<std::string>();
      }
      for (const auto& [k, v] : (*index)["weight_map"].items()) {
        weight_map[k] = v.is_string() ? v.get<std::string>() : "";
      }
      const size_t n = shards.size();
      for (size_t i = 0; i < n; ++i) {
        std::string want = absl::StrFormat("model-%05d-of-%05d.safetensors", i + 1, n);
        if (shards[i] != want)
          Violation("shards", absl::StrCat("shard ", shards[i], ", expected ", want));
      }
      if (n < 2) Violation("shards", "an index with fewer than two shards");
      std::set<std::string> mapped;
      for (const auto& [k, f] : weight_map) mapped.insert(f);
      for (const std::string& f : mapped) {
        if (!fs::exists(out_ + "/" + f)) {
          Violation("shards", absl::StrCat("index names missing file ", f));
        }
      }
      files = shards;
    } else {
      if (!shards.empty()) Violation("shards", "shard files without model.safetensors.index.json");
      if (!has_single) {
        Violation("shards", "neither model.safetensors nor model.safetensors.index.json");
        return;
      }
      files = {"model.safetensors"};
    }
    std::map<std::string, std::string> found_in;
    int64_t total = 0;
    for (const std::string& f : files) {
      auto file = SafetensorsFile::Open(out_ + "/" + f);
      if (!file.ok()) {
        Violation("safetensors", std::string(file.status().message()));
        continue;
      }
      const auto& meta = (*file)->metadata();
      if (meta.count("format") == 0 || meta.at("format") != "pt") {
        Violation("safetensors", f + " lacks __metadata__ format \"pt\"");
      }
      if (!has_index) index_metadata = meta;
      for (const SafetensorsEntry& e : (*file)->entries()) {
        found_in[e.name] = f;
        total += static_cast<int64_t>(e.end - e.begin);
        CheckTensor(**file, e, expected);
      }
    }
    for (const auto& [name, exp] : expected) {
      if (found_in.count(name) == 0) Violation("tensors", name + " is missing");
    }
    if (has_index) {
      if (!index->at("metadata").contains("total_size") ||
          index->at("metadata")["total_size"] != total) {
        Violation("shards", absl::StrCat("index metadata.total_size is not ", total));
      }
      for (const auto& [name, f] : found_in) {
        if (weight_map.count(name) == 0 || weight_map[name] != f) {
          Violation("shards", absl::StrCat("index weight_map does not place ", name, " in ", f));
        }
      }
      for (const auto& [name, f] : weight_map) {
        if (found_in.count(name) == 0) Violation("shards", "index names absent tensor " + name);
      }
    }
    if (tied) {
      auto it = index_metadata.find("lm_head.weight");
      if (it == index_metadata.end() || it->second != "model.embed_tokens.weight") {
        Violation("tied", "metadata lacks \"lm_head.weight\": \"model.embed_tokens.weight\"");
      }
    }
  }

  void CheckTensor(const SafetensorsFile& file, const SafetensorsEntry& e,
                   const std::map<std::string, Expected>& expected) {
    auto it = expected.find(e.name);
    if (it == expected.end()) {
      std::string rule = e.name.rfind("lm_head", 0) == 0 ? "tied" : "tensors";
      Violation(rule, e.name + " is not expected in this checkpoint");
      return;
    }
    std::string dtype(DTypeName(e.dtype));
    if (dtype != it->second.dtype) {
      bool float_rule = it->second.dtype != "I32" && e.name.find(".scales") == std::string::npos &&
                        e.name.find("_proj.bias") == std::string::npos;
      Violation(float_rule ? "dtype" : "tensors",
                absl::StrCat(e.name, " has dtype ", dtype, ", expected ", it->second.dtype));
    }
    if (e.shape != it->second.shape) {
      Violation("tensors", absl::StrCat(e.name, " has shape ", Shape(e.shape), ", expected ",
                                        Shape(it->second.shape)));
    }
    if (scales_.count(e.name) != 0 && e.dtype == DType::kF16) {
      auto t = file.ReadFloat(e);
      if (t.ok()) {
        for (float v : t->data) {
          if (!(std::isfinite(v) && v > 0)) {
            Violation("tensors", e.name + " holds a non-positive or non-finite scale");
            break;
          }
        }
      }
    }
  }

  void CheckTempFiles() {
    for (const auto& e : fs::directory_iterator(out_)) {
      std::string n = e.path().filename().string();
      if (n.size() > 11 && n.substr(n.size() - 11) == ".quantd-tmp") {
        Violation("temporaries", "leftover temporary " + n);
      }
    }
  }

  void CheckSideFiles() {
    for (const char* name : kSideFiles) {
      std::string src = src_ + "/" + name, out = out_ + "/" + name;
      if (!fs::is_regular_file(src)) continue;
      if (!fs::is_regular_file(out)) {
        Violation("files", absl::StrCat(name, " was not copied"));
      } else if (Slurp(src) != Slurp(out)) {
        Violation("files", absl::StrCat(name, " differs from the source"));
      }
    }
  }

  void CheckSeedFiles() {
    std::optional<Json> config = ReadJson(out_ + "/config.json");
    Json qc = config ? config->value("quantization_config", Json::object()) : Json::object();
    nlohmann::ordered_json ordered = nlohmann::ordered_json::object();
    ordered["zero_point"] = qc.value("zero_point", Json());
    ordered["q_group_size"] = qc.value("group_size", Json());
    ordered["w_bit"] = qc.value("bits", Json());
    ordered["version"] = "GEMM";
    if (!fs::is_regular_file(out_ + "/quant_config.json")) {
      Violation("quant_config.json", "missing");
    } else if (Slurp(out_ + "/quant_config.json") != ordered.dump(2) + "\n") {
      Violation("quant_config.json", "content differs from " + ordered.dump());
    }
    std::string lines;
    Json modules = qc.value("modules_to_not_convert", Json());
    if (modules.is_array()) {
      for (const Json& m : modules) {
        if (m.is_string()) lines += m.get<std::string>() + "\n";
      }
    }
    if (!fs::is_regular_file(out_ + "/modules_to_not_convert.txt")) {
      Violation("modules_to_not_convert.txt", "missing");
    } else if (Slurp(out_ + "/modules_to_not_convert.txt") != lines) {
      Violation("modules_to_not_convert.txt",
                "lines differ from quantization_config.modules_to_not_convert");
    }
  }

  std::string out_, src_;
  OutputFormatExpectations expect_;
  int group_size_ = 0;
  std::vector<std::string> not_converted_;
  std::set<std::string> scales_;
  std::vector<std::string> violations_;
};

}  // namespace

std::vector<std::string> CheckOutputFormat(const std::string& output_dir,
                                           const std::string& source_dir,
                                           const OutputFormatExpectations& expect) {
  return Checker(output_dir, source_dir, expect).Run();
}

}  // namespace quantd::engine::testing
