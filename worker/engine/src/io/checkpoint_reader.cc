#include "io/checkpoint_reader.h"

#include <algorithm>
#include <filesystem>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/parallel_for.h"
#include "io/json_file.h"
#include "io/moe_checkpoint.h"
#include "io/source_values.h"
#include "io/status_macros.h"
#include "model/architecture.h"
#include "quantd/engine/format_options.h"

namespace quantd::engine {
namespace {

namespace fs = std::filesystem;

constexpr char kSingleFile[] = "model.safetensors";
constexpr char kIndexFile[] = "model.safetensors.index.json";

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

}  // namespace

int LayerReadThreads() { return HostThreads(16); }

absl::StatusOr<std::unique_ptr<CheckpointReader>> CheckpointReader::Open(
    const std::string& model_dir) {
  std::unique_ptr<CheckpointReader> reader(new CheckpointReader());
  reader->model_dir_ = model_dir;
  const fs::path dir(model_dir);
  std::error_code ec;
  const std::string index_path = (dir / kIndexFile).string();
  if (fs::exists(index_path, ec)) {
    QUANTD_ASSIGN_OR_RETURN(nlohmann::json index, ReadJsonFile(index_path));
    auto map = index.is_object() ? index.find("weight_map") : index.end();
    if (map == index.end() || !map->is_object() || map->empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(index_path, ": field 'weight_map': expected a non-empty object"));
    }
    std::map<std::string, const SafetensorsFile*> opened;
    for (const auto& [name, shard] : map->items()) {
      if (!shard.is_string()) {
        return absl::InvalidArgumentError(absl::StrCat(index_path, ": field 'weight_map.", name,
                                                       "': expected a file name string"));
      }
      std::string shard_name = shard.get<std::string>();
      if (shard_name.empty() || shard_name.find('/') != std::string::npos || shard_name == "..") {
        return absl::InvalidArgumentError(
            absl::StrCat(index_path, ": field 'weight_map.", name, "': \"", shard_name,
                         "\" is not a file name in the model directory"));
      }
      auto it = opened.find(shard_name);
      if (it == opened.end()) {
        std::string shard_path = (dir / shard_name).string();
        if (!fs::exists(shard_path, ec)) {
          return absl::InvalidArgumentError(absl::StrCat(index_path, " names shard ", shard_name,
                                                         " (for tensor \"", name,
                                                         "\"), which does not exist"));
        }
        QUANTD_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> file,
                                SafetensorsFile::Open(shard_path));
        it = opened.emplace(shard_name, file.get()).first;
        reader->files_.push_back(std::move(file));
      }
      if (it->second->Find(name) == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat(index_path, " places tensor \"", name,
                                                       "\" in ", it->second->path(),
                                                       ", which does not contain it"));
      }
      reader->location_[name] = it->second;
    }
    return reader;
  }
  const std::string single_path = (dir / kSingleFile).string();
  if (!fs::exists(single_path, ec)) {
    std::string hint = fs::exists(dir / "pytorch_model.bin", ec)
                           ? " (pytorch_model.bin found: only safetensors checkpoints are "
                             "supported; convert it with save_pretrained(safe_serialization=True))"
                           : "";
    return absl::InvalidArgumentError(absl::StrCat("model_dir ", model_dir, " has neither ",
                                                   kSingleFile, " nor ", kIndexFile, hint));
  }
  QUANTD_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> file,
                          SafetensorsFile::Open(single_path));
  for (const SafetensorsEntry& e : file->entries()) reader->location_[e.name] = file.get();
  reader->files_.push_back(std::move(file));
  return reader;
}

std::vector<std::string> CheckpointReader::files() const {
  std::vector<std::string> paths;
  for (const auto& f : files_) paths.push_back(f->path());
  return paths;
}

const SafetensorsEntry* CheckpointReader::Find(std::string_view name,
                                               const SafetensorsFile** file) const {
  auto it = location_.find(name);
  if (it == location_.end()) return nullptr;
  if (file != nullptr) *file = it->second;
  return it->second->Find(name);
}

absl::StatusOr<Tensor> CheckpointReader::ReadFloat(std::string_view name) const {
  const SafetensorsFile* file = nullptr;
  const SafetensorsEntry* e = Find(name, &file);
  if (e == nullptr) {
    return absl::NotFoundError(absl::StrCat("tensor \"", std::string(name),
                                            "\" is not in the checkpoint of ", model_dir_));
  }
  return file->ReadFloat(*e);
}

absl::Status CheckpointReader::CheckTensor(const TensorSpec& spec, const SafetensorsFile** file,
                                           const SafetensorsEntry** entry) const {
  const SafetensorsEntry* e = Find(spec.name, file);
  if (e == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor \"", spec.name, "\" (expected shape ", ShapeString(spec.shape),
                     ") is missing from the checkpoint in ", model_dir_));
  }
  if (e->shape != spec.shape) {
    return absl::InvalidArgumentError(absl::StrCat(
        (*file)->path(), ": tensor \"", spec.name, "\" has shape ", ShapeString(e->shape),
        ", expected ", ShapeString(spec.shape), " from config.json"));
  }
  if (e->dtype == DType::kI32) {
    return absl::InvalidArgumentError(absl::StrCat((*file)->path(), ": tensor \"", spec.name,
                                                   "\" has dtype I32, expected F32, F16 or BF16"));
  }
  if (entry != nullptr) *entry = e;
  return absl::OkStatus();
}

absl::StatusOr<Tensor> CheckpointReader::ReadExpected(std::string_view name,
                                                      const std::vector<int64_t>& shape) const {
  const SafetensorsFile* file = nullptr;
  const SafetensorsEntry* e = nullptr;
  QUANTD_RETURN_IF_ERROR(CheckTensor({std::string(name), shape}, &file, &e));
  return file->ReadFloat(*e);
}

absl::Status CheckpointReader::CheckAgainstConfig(const ModelConfig& config) const {
  const SafetensorsFile* file = nullptr;
  for (const TensorSpec& spec : SourceGlobalTensors(config)) {
    QUANTD_RETURN_IF_ERROR(CheckTensor(spec, &file, nullptr));
  }
  for (int layer = 0; layer < config.num_hidden_layers; ++layer) {
    QUANTD_ASSIGN_OR_RETURN(const ExpertLayout experts, FindExpertLayout(*this, config, layer));
    if (experts == ExpertLayout::kFused) {
      for (const TensorSpec& spec : FusedExpertTensors(config, layer)) {
        QUANTD_RETURN_IF_ERROR(CheckTensor(spec, &file, nullptr));
      }
    }
    for (const LayerTensorSpec& t : config.arch->layer_tensors(config)) {
      if (experts == ExpertLayout::kFused && FromFusedExperts(config, t.name)) continue;
      const std::string base = LayerTensorName(layer, t.name);
      QUANTD_RETURN_IF_ERROR(CheckTensor({base + ".weight", t.shape}, &file, nullptr));
      if (t.bias)
        QUANTD_RETURN_IF_ERROR(CheckTensor({base + ".bias", {t.shape[0]}}, &file, nullptr));
    }
  }
  // A layer beyond num_hidden_layers means the config and weights disagree.
  std::string extra = LayerTensorName(config.num_hidden_layers, "");
  for (const auto& [name, f] : location_) {
    if (name.rfind(extra, 0) == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          f->path(), ": tensor \"", name, "\" belongs to a layer beyond num_hidden_layers (",
          config.num_hidden_layers, ") of config.json"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<SourceValues> CheckpointReader::Source(const TensorSpec& spec) const {
  const SafetensorsFile* file = nullptr;
  const SafetensorsEntry* e = nullptr;
  QUANTD_RETURN_IF_ERROR(CheckTensor(spec, &file, &e));
  if (IsIntegerDType(e->dtype)) {  // as SafetensorsFile::ReadFloat refuses them
    return absl::InvalidArgumentError(
        absl::StrCat(file->path(), ": tensor \"", e->name,
                     "\" has an integer dtype, expected F32, F16 or BF16"));
  }
  return SourceValues{file, e->name, e->dtype, file->Bytes(*e).data(), 0, e->numel()};
}

absl::StatusOr<LayerWeights> CheckpointReader::LoadLayer(const ModelConfig& config,
                                                         int layer) const {
  QUANTD_ASSIGN_OR_RETURN(LayerWeights w, LoadLayerSources(config, layer));
  QUANTD_RETURN_IF_ERROR(MaterializeLayer(&w));
  return w;
}

absl::StatusOr<LayerWeights> CheckpointReader::LoadLayerSources(const ModelConfig& config,
                                                                int layer) const {
  if (layer < 0 || layer >= config.num_hidden_layers) {
    return absl::InvalidArgumentError(absl::StrCat("layer ", layer, " out of range"));
  }
  LayerWeights w;
  w.index = layer;
  QUANTD_ASSIGN_OR_RETURN(const ExpertLayout experts, FindExpertLayout(*this, config, layer));
  if (experts == ExpertLayout::kFused) {
    QUANTD_RETURN_IF_ERROR(LoadFusedExperts(*this, config, layer, &w));
  }
  for (const LayerTensorSpec& t : config.arch->layer_tensors(config)) {
    if (experts == ExpertLayout::kFused && FromFusedExperts(config, t.name)) continue;
    const std::string base = LayerTensorName(layer, t.name);
    if (!t.linear) {  // norms and the router: small, read now
      QUANTD_ASSIGN_OR_RETURN(*FindFloatTensor(&w, t.name),
                              ReadExpected(base + ".weight", t.shape));
      continue;
    }
    QUANTD_ASSIGN_OR_RETURN(SourceValues source, Source({base + ".weight", t.shape}));
    std::optional<Tensor> bias;
    if (t.bias) {
      QUANTD_ASSIGN_OR_RETURN(bias, ReadExpected(base + ".bias", {t.shape[0]}));
    }
    if (t.parts.empty()) {
      LinearWeights* l = FindLinear(&w, t.name);
      l->weight.shape = t.shape;
      l->source = std::move(source);
      l->bias = std::move(bias);
      continue;
    }
    // A fused Linear: its canonical parts are consecutive row blocks.
    const int64_t cols = t.shape[1];
    const auto width = static_cast<size_t>(DTypeSize(source.dtype));
    int64_t row = 0;
    for (const LinearPart& p : t.parts) {
      LinearWeights* part = FindLinear(&w, p.name);
      part->weight.shape = {p.rows, cols};
      part->source = source;
      part->source->bytes += static_cast<size_t>(row * cols) * width;
      part->source->first = row * cols;
      part->source->count = p.rows * cols;
      if (bias.has_value()) {
        part->bias = Tensor({p.rows});
        std::copy_n(bias->ptr() + row, p.rows, part->bias->ptr());
      }
      row += p.rows;
    }
  }
  return w;
}

absl::StatusOr<Tensor> CheckpointReader::LoadEmbedding() const {
  return ReadFloat(kEmbedTokensName);
}

absl::StatusOr<Tensor> CheckpointReader::LoadFinalNorm() const { return ReadFloat(kFinalNormName); }

absl::StatusOr<Tensor> CheckpointReader::LoadLmHead(const ModelConfig& config) const {
  return ReadFloat(config.tie_word_embeddings ? kEmbedTokensName : kLmHeadName);
}

absl::Status CheckQuantizableGeometry(const ModelConfig& config, int group_size,
                                      const std::vector<std::string>& modules_to_not_convert) {
  if (group_size <= 0 && group_size != kPerChannelGroup) {
    return absl::InvalidArgumentError(
        absl::StrCat("group_size must be positive or -1 (per-channel), found ", group_size));
  }
  const std::vector<LinearSpec> linears = LayerLinears(config);
  for (int layer = 0; layer < config.num_hidden_layers; ++layer) {
    for (const LinearSpec& l : linears) {
      // Fused Linears are one module to vLLM (all quantized or none), so the source name counts.
      const std::string module = LayerTensorName(layer, l.source);
      bool skipped = false;
      for (const std::string& m : modules_to_not_convert) {
        if (MatchesModulePattern(module, m)) skipped = true;
      }
      if (skipped) continue;
      if (group_size > 0 && l.in % group_size != 0) {
        return absl::FailedPreconditionError(
            absl::StrCat("module ", module, ": in_features ", l.in,
                         " is not divisible by group_size ", group_size,
                         "; choose a group size that divides it or list the module in "
                         "modules_to_not_convert"));
      }
      if (l.out % 8 != 0) {
        return absl::FailedPreconditionError(
            absl::StrCat("module ", LayerTensorName(layer, l.name), ": out_features ", l.out,
                         " is not a multiple of 8, which both formats' packing needs"));
      }
      if (group_size == kPerChannelGroup && l.in % 8 != 0) {
        return absl::FailedPreconditionError(
            absl::StrCat("module ", LayerTensorName(layer, l.name), ": in_features ", l.in,
                         " is not a multiple of 8, which compressed-tensors' weight_packed needs"));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<SourceModel> OpenSourceModel(
    const std::string& model_dir, int group_size,
    const std::vector<std::string>& modules_to_not_convert) {
  std::error_code ec;
  if (!fs::is_directory(model_dir, ec)) {
    return absl::InvalidArgumentError(
        absl::StrCat("model_dir ", model_dir,
                     fs::exists(model_dir, ec) ? " is not a directory" : " does not exist"));
  }
  SourceModel model;
  QUANTD_ASSIGN_OR_RETURN(model.config, LoadModelConfig(model_dir));
  QUANTD_RETURN_IF_ERROR(
      CheckQuantizableGeometry(model.config, group_size, modules_to_not_convert));
  QUANTD_ASSIGN_OR_RETURN(model.weights, CheckpointReader::Open(model_dir));
  QUANTD_RETURN_IF_ERROR(model.weights->CheckAgainstConfig(model.config));
  return model;
}

}  // namespace quantd::engine
