#include "export/awq_export.h"

#include <algorithm>
#include <filesystem>
#include <regex>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "export/compressed_tensors_export.h"
#include "io/checkpoint_reader.h"
#include "io/file_util.h"
#include "io/status_macros.h"
#include "model/architecture.h"

namespace quantd::engine {
namespace {

namespace fs = std::filesystem;

// True when `dir` is `root` or lies inside it (dir need not exist yet).
bool IsSameOrInside(const std::string& dir, const std::string& root) {
  std::error_code ec;
  fs::path r = fs::canonical(root, ec);
  if (ec) return false;
  fs::path d = fs::weakly_canonical(dir, ec);
  if (ec) return false;
  auto [r_end, d_it] = std::mismatch(r.begin(), r.end(), d.begin(), d.end());
  return r_end == r.end();
}

}  // namespace

const char* const kCopiedModelFiles[] = {"generation_config.json",
                                         "tokenizer.json",
                                         "tokenizer_config.json",
                                         "special_tokens_map.json",
                                         "vocab.json",
                                         "merges.txt",
                                         "added_tokens.json",
                                         "tokenizer.model",
                                         "chat_template.jinja",
                                         "chat_template.json",
                                         nullptr};

ExportOptions ExportOptions::From(const QuantizeOptions& o) {
  ExportOptions e;
  e.model_dir = o.model_dir;
  e.output_dir = o.output_dir;
  e.bits = o.bits;
  e.group_size = o.group_size;
  e.zero_point = o.zero_point;
  e.format = o.format;
  e.modules_to_not_convert = o.modules_to_not_convert;
  e.output_dtype = o.output_dtype;
  e.scale_dtype = o.scale_dtype;
  return e;
}

QuantFormat ExportOptions::quant_format() const {
  return {format, bits, group_size, zero_point, output_dtype, scale_dtype};
}

DType FloatDTypeOf(OutputDtype dtype) {
  return dtype == OutputDtype::kBFloat16 ? DType::kBF16 : DType::kF16;
}

bool IsNotConverted(std::string_view module, const std::vector<std::string>& modules) {
  for (const std::string& m : modules) {
    if (MatchesModulePattern(module, m)) return true;
  }
  return false;
}

// State-dict order of the quantized model: embedding; per layer self_attn (q, k, v, o as
// WQLinear_GEMM buffers qweight, qzeros, scales[, bias]; Qwen3 q_norm, k_norm), mlp (gate, up,
// down), input_layernorm, post_attention_layernorm; final norm; lm_head when untied.
std::vector<PlannedTensor> PlanAwqStateDict(const ModelConfig& c, const ExportOptions& o) {
  const DType fdt = FloatDTypeOf(o.output_dtype);
  const int pack = 32 / o.bits;
  std::vector<PlannedTensor> plan = {{kEmbedTokensName, fdt, {c.vocab_size, c.hidden_size}}};
  std::vector<int64_t> out = LinearOutFeatures(c);
  std::vector<int64_t> in = LinearInFeatures(c);
  for (int layer = 0; layer < c.num_hidden_layers; ++layer) {
    for (size_t i = 0; i < 7; ++i) {
      std::string base = LayerTensorName(layer, kLayerLinearNames[i]);
      const bool bias = c.attention_bias && i < 3;
      if (IsNotConverted(base, o.modules_to_not_convert)) {
        plan.push_back({base + ".weight", fdt, {out[i], in[i]}});
        if (bias) plan.push_back({base + ".bias", fdt, {out[i]}});
      } else {
        const int64_t g = o.group_size > 0 ? o.group_size : in[i];
        plan.push_back({base + ".qweight", DType::kI32, {in[i], out[i] / pack}});
        plan.push_back({base + ".qzeros", DType::kI32, {in[i] / g, out[i] / pack}});
        plan.push_back({base + ".scales", DType::kF16, {in[i] / g, out[i]}});
        if (bias) plan.push_back({base + ".bias", DType::kF16, {out[i]}});
      }
      if (c.qk_norm && i == 3) {
        plan.push_back({LayerTensorName(layer, "self_attn.q_norm.weight"), fdt, {c.head_dim}});
        plan.push_back({LayerTensorName(layer, "self_attn.k_norm.weight"), fdt, {c.head_dim}});
      }
    }
    plan.push_back({LayerTensorName(layer, "input_layernorm.weight"), fdt, {c.hidden_size}});
    plan.push_back(
        {LayerTensorName(layer, "post_attention_layernorm.weight"), fdt, {c.hidden_size}});
  }
  plan.push_back({kFinalNormName, fdt, {c.hidden_size}});
  if (!c.tie_word_embeddings) plan.push_back({kLmHeadName, fdt, {c.vocab_size, c.hidden_size}});
  return plan;
}

nlohmann::json MakeOutputConfig(const ModelConfig& config, const ExportOptions& o) {
  nlohmann::json out = config.raw;
  if (o.format == CheckpointFormat::kCompressedTensors) {
    // compressed-tensors matches `ignore` entries as exact names or re: patterns; lm_head is
    // never quantized (vLLM's lm_head is no Linear layer, but readers expect it listed).
    std::vector<std::string> ignore = {"lm_head"};
    for (const std::string& m : o.modules_to_not_convert) {
      if (m != "lm_head" && std::find(ignore.begin(), ignore.end(), m) == ignore.end()) {
        ignore.push_back(m);
      }
    }
    out["quantization_config"] = CompressedTensorsQuantizationConfig(o.quant_format(), ignore);
  } else {
    // vLLM's and AutoAWQ's readers match substrings: re: patterns would never match there.
    std::vector<std::string> plain;
    for (const std::string& m : o.modules_to_not_convert) {
      if (m.rfind("re:", 0) != 0) plain.push_back(m);
    }
    nlohmann::json modules = plain.empty() ? nlohmann::json(nullptr) : nlohmann::json(plain);
    out["quantization_config"] = {
        {"quant_method", "awq"},      {"bits", o.bits},    {"group_size", o.group_size},
        {"zero_point", o.zero_point}, {"version", "gemm"}, {"modules_to_not_convert", modules}};
  }
  // transformers 4.x reads torch_dtype, 5.x dtype (and still accepts torch_dtype).
  const char* dtype = OutputDtypeName(o.output_dtype);
  bool has_dtype = out.contains("dtype");
  if (has_dtype) out["dtype"] = dtype;
  if (out.contains("torch_dtype") || !has_dtype) out["torch_dtype"] = dtype;
  out["use_cache"] = false;
  return out;
}

std::string MakeQuantConfigJson(const ExportOptions& o) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  j["zero_point"] = o.zero_point;
  j["q_group_size"] = o.group_size;
  j["w_bit"] = o.bits;
  j["version"] = "GEMM";
  return j.dump(2) + "\n";
}

AwqExporter::AwqExporter(const ModelConfig& config, const ExportOptions& options)
    : config_(config), options_(options), staged_(options.output_dir) {}

AwqExporter::~AwqExporter() { Abort(); }

absl::StatusOr<std::unique_ptr<AwqExporter>> AwqExporter::Create(const ModelConfig& config,
                                                                 const ExportOptions& options) {
  if (options.output_dir.empty()) return absl::InvalidArgumentError("output_dir is empty");
  if (options.bits != 4) {
    return absl::InvalidArgumentError(absl::StrCat("bits must be 4, found ", options.bits));
  }
  QUANTD_RETURN_IF_ERROR(CheckQuantFormat(options.quant_format()));
  if (!options.model_dir.empty() && IsSameOrInside(options.output_dir, options.model_dir)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "output_dir ", options.output_dir, " is the model directory ", options.model_dir,
        " or inside it; choose another directory (model_dir is "
        "never modified)"));
  }
  QUANTD_RETURN_IF_ERROR(
      CheckQuantizableGeometry(config, options.group_size, options.modules_to_not_convert));
  QUANTD_RETURN_IF_ERROR(EnsureDirectory(options.output_dir, "output_dir"));
  std::unique_ptr<AwqExporter> e(new AwqExporter(config, options));
  std::map<std::string, std::string> dropped;
  if (config.tie_word_embeddings) dropped[kLmHeadName] = kEmbedTokensName;
  std::vector<PlannedTensor> plan = PlanAwqStateDict(config, options);
  if (options.format == CheckpointFormat::kCompressedTensors) {
    plan = PlanCompressedTensorsStateDict(plan, options.zero_point,
                                          FloatDTypeOf(ScaleDtypeOf(options.quant_format())));
  }
  QUANTD_ASSIGN_OR_RETURN(e->weights_,
                          CheckpointWriter::Create(&e->staged_, std::move(plan), std::move(dropped),
                                                   options.max_shard_bytes));
  return e;
}

absl::Status AwqExporter::WriteLinear(int layer, std::string_view linear,
                                      const PackedLinear& packed) {
  std::string base = LayerTensorName(layer, linear);
  if (options_.format == CheckpointFormat::kCompressedTensors) {
    return WriteCompressedTensorsLinear(weights_.get(), base, packed, options_.zero_point);
  }
  QUANTD_RETURN_IF_ERROR(weights_->WriteInt32(base + ".qweight", packed.qweight));
  QUANTD_RETURN_IF_ERROR(weights_->WriteInt32(base + ".qzeros", packed.qzeros));
  QUANTD_RETURN_IF_ERROR(weights_->WriteFloat(base + ".scales", packed.scales));
  return WriteLinearBias(weights_.get(), base, packed.bias);
}

absl::Status WriteLinearBias(CheckpointWriter* writer, const std::string& base,
                             const std::optional<Tensor>& bias) {
  const bool planned = writer->Find(base + ".bias") != nullptr;
  if (planned != bias.has_value()) {
    return absl::InternalError(absl::StrCat(base, ": bias ", planned ? "missing" : "unexpected"));
  }
  return bias.has_value() ? writer->WriteFloat(base + ".bias", *bias) : absl::OkStatus();
}

absl::Status AwqExporter::WriteFloatLinear(int layer, std::string_view linear,
                                           const LinearWeights& weights) {
  std::string base = LayerTensorName(layer, linear);
  QUANTD_RETURN_IF_ERROR(weights_->WriteFloat(base + ".weight", weights.weight));
  if (weights.bias) QUANTD_RETURN_IF_ERROR(weights_->WriteFloat(base + ".bias", *weights.bias));
  return absl::OkStatus();
}

absl::Status AwqExporter::WriteLayerNorms(int layer, const LayerWeights& w) {
  QUANTD_RETURN_IF_ERROR(
      weights_->WriteFloat(LayerTensorName(layer, "input_layernorm.weight"), w.input_layernorm));
  QUANTD_RETURN_IF_ERROR(weights_->WriteFloat(
      LayerTensorName(layer, "post_attention_layernorm.weight"), w.post_attention_layernorm));
  if (config_.qk_norm) {
    if (!w.q_norm || !w.k_norm) return absl::InternalError("Qwen3 layer without q_norm/k_norm");
    QUANTD_RETURN_IF_ERROR(
        weights_->WriteFloat(LayerTensorName(layer, "self_attn.q_norm.weight"), *w.q_norm));
    QUANTD_RETURN_IF_ERROR(
        weights_->WriteFloat(LayerTensorName(layer, "self_attn.k_norm.weight"), *w.k_norm));
  }
  return absl::OkStatus();
}

absl::Status AwqExporter::WriteFloat(std::string_view name, const Tensor& tensor) {
  return weights_->WriteFloat(name, tensor);
}

absl::Status AwqExporter::WriteFloatFrom(std::string_view name, int64_t first, DType source,
                                         absl::Span<const uint8_t> bytes) {
  return weights_->WriteFloatFrom(name, first, source, bytes);
}

absl::Status AwqExporter::AddFile(std::string_view name, std::string_view content) {
  return staged_.AddContent(name, content);
}

absl::Status AwqExporter::StageSideFiles() {
  QUANTD_RETURN_IF_ERROR(
      staged_.AddContent("config.json", MakeOutputConfig(config_, options_).dump(2) + "\n"));
  for (const char* const* name = kCopiedModelFiles; *name != nullptr; ++name) {
    std::string source = (fs::path(options_.model_dir) / *name).string();
    std::error_code ec;
    if (options_.model_dir.empty() || !fs::is_regular_file(source, ec)) continue;
    QUANTD_ASSIGN_OR_RETURN(std::string content, ReadFileToString(source));
    QUANTD_RETURN_IF_ERROR(staged_.AddContent(*name, content));
  }
  if (options_.format == CheckpointFormat::kAwqGemm) {  // the seed's file describes GEMM
    QUANTD_RETURN_IF_ERROR(staged_.AddContent("quant_config.json", MakeQuantConfigJson(options_)));
  }
  std::string modules;
  for (const std::string& m : options_.modules_to_not_convert) absl::StrAppend(&modules, m, "\n");
  return staged_.AddContent("modules_to_not_convert.txt", modules);
}

// A checkpoint of an earlier run in output_dir would be mixed with ours (an old index wins over a
// new single file), so its weight files go, as huggingface_hub's saver deletes them; so does a
// GEMM run's quant_config.json under a compressed-tensors checkpoint.
absl::Status AwqExporter::RemoveStaleCheckpointFiles() const {
  static const std::regex kWeightFile(
      R"(model(-\d{5}-of-\d{5})?\.safetensors(\.index\.json)?|quant_config\.json)");
  std::vector<std::string> ours = staged_.names();
  std::set<std::string> keep(ours.begin(), ours.end());
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(options_.output_dir, ec)) {
    std::string name = entry.path().filename().string();
    if (std::regex_match(name, kWeightFile) && keep.count(name) == 0) {
      fs::remove(entry.path(), ec);
    }
  }
  return absl::OkStatus();
}

void AwqExporter::StartWriteback() const {
  if (weights_ != nullptr) weights_->StartWriteback();
}

absl::Status AwqExporter::FinishWeights() {
  if (weights_finished_) return absl::OkStatus();
  if (weights_ == nullptr) return absl::FailedPreconditionError("export aborted");
  QUANTD_RETURN_IF_ERROR(weights_->Finish());
  weights_finished_ = true;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Artifact>> AwqExporter::Commit(bool digests) {
  if (committed_) return absl::FailedPreconditionError("export already committed");
  absl::Status status = FinishWeights();
  if (status.ok()) status = StageSideFiles();
  if (status.ok()) status = staged_.Commit();
  if (!status.ok()) {
    Abort();
    return status;
  }
  committed_ = true;
  QUANTD_RETURN_IF_ERROR(RemoveStaleCheckpointFiles());
  std::vector<Artifact> artifacts;
  for (const std::string& name : staged_.names()) {
    const std::string path = staged_.FinalPath(name);
    if (digests) {
      QUANTD_ASSIGN_OR_RETURN(Artifact a, DescribeArtifact(path));
      artifacts.push_back(std::move(a));
      continue;
    }
    std::error_code ec;
    const uintmax_t size = fs::file_size(path, ec);
    if (ec) return absl::InternalError(absl::StrCat("cannot stat ", path, ": ", ec.message()));
    artifacts.push_back({path, static_cast<int64_t>(size), ""});
  }
  return artifacts;
}

void AwqExporter::Abort() {
  weights_.reset();  // Closes the shard files before their temporaries are removed.
  staged_.Abort();
}

}  // namespace quantd::engine
