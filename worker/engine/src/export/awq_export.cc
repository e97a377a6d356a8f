#include "export/awq_export.h"

#include <algorithm>
#include <filesystem>
#include <regex>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "io/checkpoint_reader.h"
#include "io/file_util.h"
#include "io/status_macros.h"
#include "model/architecture.h"
#include "model/moe_layout.h"
#include "path_guard/confined_io.h"

namespace quantd::engine {
namespace {

namespace fs = std::filesystem;

const char* OutputDtypeName(OutputDtype d) {
  return d == OutputDtype::kBFloat16 ? "bfloat16" : "float16";
}

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

OutputDtype ResolveOutputDtype(const ModelConfig& config, OutputDtype requested) {
  if (requested != OutputDtype::kAuto) return requested;
  return config.arch != nullptr && config.arch->float16_overflows ? OutputDtype::kBFloat16
                                                                  : OutputDtype::kFloat16;
}

ExportOptions ExportOptions::From(const QuantizeOptions& o, const ModelConfig& config) {
  ExportOptions e;
  e.model_dir = o.model_dir;
  e.output_dir = o.output_dir;
  e.bits = o.bits;
  e.group_size = o.group_size;
  e.zero_point = o.zero_point;
  e.modules_to_not_convert = o.modules_to_not_convert;
  e.output_dtype = ResolveOutputDtype(config, o.output_dtype);
  return e;
}

DType FloatDTypeOf(OutputDtype dtype) {
  return dtype == OutputDtype::kBFloat16 ? DType::kBF16 : DType::kF16;
}

bool IsNotConverted(std::string_view module, const std::vector<std::string>& modules) {
  for (const std::string& m : modules) {
    if (!m.empty() && module.find(m) != std::string_view::npos) return true;
  }
  return false;
}

// State-dict order of the quantized model: embedding; per layer the family's tensors in its order
// (layer_tensors), each quantized Linear as WQLinear_GEMM buffers qweight, qzeros, scales[, bias] —
// a fused one (Phi-3's qkv_proj) whole, as the source has it —, every other tensor in float; final
// norm; lm_head when untied.
std::vector<PlannedTensor> PlanAwqStateDict(const ModelConfig& c, const ExportOptions& o) {
  const DType fdt = FloatDTypeOf(o.output_dtype);
  const int64_t g = o.group_size;
  const int pack = 32 / o.bits;
  std::vector<PlannedTensor> plan = {{kEmbedTokensName, fdt, {c.vocab_size, c.hidden_size}}};
  const std::vector<LayerTensorSpec> tensors = c.arch->layer_tensors(c);
  for (int layer = 0; layer < c.num_hidden_layers; ++layer) {
    for (const LayerTensorSpec& t : tensors) {
      const std::string base = LayerTensorName(layer, t.name);
      const int64_t out = t.shape[0];
      if (!t.linear || IsNotConverted(base, o.modules_to_not_convert)) {
        plan.push_back({base + ".weight", fdt, t.shape});
        if (t.bias) plan.push_back({base + ".bias", fdt, {out}});
        continue;
      }
      const int64_t in = t.shape[1];
      plan.push_back({base + ".qweight", DType::kI32, {in, out / pack}});
      plan.push_back({base + ".qzeros", DType::kI32, {in / g, out / pack}});
      plan.push_back({base + ".scales", DType::kF16, {in / g, out}});
      if (t.bias) plan.push_back({base + ".bias", DType::kF16, {out}});
    }
  }
  plan.push_back({kFinalNormName, fdt, {c.hidden_size}});
  if (!c.tie_word_embeddings) plan.push_back({kLmHeadName, fdt, {c.vocab_size, c.hidden_size}});
  return plan;
}

std::vector<std::string> OutputModulesToNotConvert(const ModelConfig& config,
                                                   const ExportOptions& options) {
  std::vector<std::string> out = options.modules_to_not_convert;
  for (const std::string& m : MoeUnquantizedModules(config)) {
    if (std::find(out.begin(), out.end(), m) == out.end()) out.push_back(m);
  }
  return out;
}

nlohmann::json MakeOutputConfig(const ModelConfig& config, const ExportOptions& o) {
  nlohmann::json out = config.raw;
  const std::vector<std::string> not_converted = OutputModulesToNotConvert(config, o);
  nlohmann::json modules =
      not_converted.empty() ? nlohmann::json(nullptr) : nlohmann::json(not_converted);
  out["quantization_config"] = {{"quant_method", "awq"},      {"bits", o.bits},
                                {"group_size", o.group_size}, {"zero_point", o.zero_point},
                                {"version", "gemm"},          {"modules_to_not_convert", modules}};
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
  if (options.group_size <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("group_size must be positive, found ", options.group_size));
  }
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
  QUANTD_ASSIGN_OR_RETURN(
      e->weights_,
      CheckpointWriter::Create(&e->staged_, PlanAwqStateDict(config, options), std::move(dropped),
                               options.max_shard_bytes, options.reuse_staged));
  return e;
}

absl::Status AwqExporter::WriteLinear(int layer, std::string_view linear,
                                      const PackedLinear& packed) {
  std::string base = LayerTensorName(layer, linear);
  QUANTD_RETURN_IF_ERROR(weights_->WriteInt32(base + ".qweight", packed.qweight));
  QUANTD_RETURN_IF_ERROR(weights_->WriteInt32(base + ".qzeros", packed.qzeros));
  QUANTD_RETURN_IF_ERROR(weights_->WriteFloat(base + ".scales", packed.scales));
  const bool planned_bias = weights_->Find(base + ".bias") != nullptr;
  if (planned_bias != packed.bias.has_value()) {
    return absl::InternalError(
        absl::StrCat(base, ": bias ", planned_bias ? "missing" : "unexpected"));
  }
  if (packed.bias) QUANTD_RETURN_IF_ERROR(weights_->WriteFloat(base + ".bias", *packed.bias));
  return absl::OkStatus();
}

absl::Status AwqExporter::WriteFloatLinear(int layer, std::string_view linear,
                                           const LinearWeights& weights) {
  std::string base = LayerTensorName(layer, linear);
  QUANTD_RETURN_IF_ERROR(weights_->WriteFloat(base + ".weight", weights.weight));
  if (weights.bias) QUANTD_RETURN_IF_ERROR(weights_->WriteFloat(base + ".bias", *weights.bias));
  return absl::OkStatus();
}

absl::Status AwqExporter::WriteLayerFloats(int layer, const std::vector<NamedTensor>& tensors) {
  for (const NamedTensor& t : tensors) {
    QUANTD_RETURN_IF_ERROR(
        weights_->WriteFloat(LayerTensorName(layer, t.name + ".weight"), t.tensor));
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
  QUANTD_RETURN_IF_ERROR(staged_.AddContent("quant_config.json", MakeQuantConfigJson(options_)));
  std::string modules;
  for (const std::string& m : OutputModulesToNotConvert(config_, options_)) {
    absl::StrAppend(&modules, m, "\n");
  }
  return staged_.AddContent("modules_to_not_convert.txt", modules);
}

// A checkpoint of an earlier run in output_dir would be mixed with ours (an old index wins over a
// new single file), so its weight files go, as huggingface_hub's saver deletes them.
absl::Status AwqExporter::RemoveStaleCheckpointFiles() const {
  static const std::regex kWeightFile(R"(model(-\d{5}-of-\d{5})?\.safetensors(\.index\.json)?)");
  std::vector<std::string> ours = staged_.names();
  std::set<std::string> keep(ours.begin(), ours.end());
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(options_.output_dir, ec)) {
    std::string name = entry.path().filename().string();
    if (std::regex_match(name, kWeightFile) && keep.count(name) == 0) {
      path_guard::Unlink(entry.path().string());  // Beneath the roots when confined.
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

void AwqExporter::Abandon() {
  weights_.reset();
  staged_.Release();
}

bool AwqExporter::ReusedStagedWeights() const { return weights_ != nullptr && weights_->reused(); }

absl::Status AwqExporter::MarkLayerWritten(int layer) {
  if (weights_ == nullptr) return absl::FailedPreconditionError("export aborted");
  const std::string prefix = LayerTensorName(layer, "");
  for (const PlannedTensor& t : weights_->state_dict()) {
    if (t.name.rfind(prefix, 0) == 0) QUANTD_RETURN_IF_ERROR(weights_->MarkWritten(t.name));
  }
  return absl::OkStatus();
}

std::vector<std::string> AwqExporter::StagedWeightPaths() const {
  std::vector<std::string> paths;
  if (weights_ == nullptr) return paths;
  for (const std::string& name : weights_->file_names()) {
    if (name.ends_with(".safetensors")) paths.push_back(TemporaryPathFor(staged_.FinalPath(name)));
  }
  return paths;
}

}  // namespace quantd::engine
