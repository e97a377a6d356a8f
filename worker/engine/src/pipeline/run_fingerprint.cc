#include "pipeline/run_fingerprint.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "io/file_util.h"
#include "io/sha256.h"
#include "model/architecture.h"
#include "path_guard/confined_io.h"

#ifndef QUANTD_ENGINE_VERSION
#define QUANTD_ENGINE_VERSION "unknown"
#endif

namespace quantd::engine {
namespace {

namespace fs = std::filesystem;

// The safetensors header of `path`: its 8-byte length prefix and the JSON.
absl::StatusOr<std::string> ReadSafetensorsHeader(const std::string& path) {
  std::unique_ptr<std::istream> stream = path_guard::OpenInputStream(path);
  if (stream == nullptr) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::istream& in = *stream;
  unsigned char prefix[8];
  if (!in.read(reinterpret_cast<char*>(prefix), 8)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": shorter than a safetensors header"));
  }
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | prefix[i];
  if (n > (uint64_t{1} << 30)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": safetensors header too large"));
  }
  std::string header(reinterpret_cast<const char*>(prefix), 8);
  header.resize(8 + n);
  if (!in.read(header.data() + 8, static_cast<std::streamsize>(n))) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": truncated safetensors header"));
  }
  return header;
}

// A readable account of a part's change.
std::string Describe(const std::string& name, const std::string& was, const std::string& now) {
  if (name == "engine") {
    return absl::StrCat("the engine build differs (was ", was.substr(0, was.find(' ')),
                        " built as ", was.substr(was.find(' ') + 1, 12), "…, now ",
                        now.substr(0, now.find(' ')), " built as ",
                        now.substr(now.find(' ') + 1, 12), "…)");
  }
  if (name == "backend") {
    return absl::StrCat("the backend differs (was ", was, ", now ", now, ")");
  }
  if (absl::StartsWith(name, "option ")) {
    const std::string option = name.substr(7);
    if (option == "system_prompt") return "the option system_prompt differs";
    return absl::StrCat("the option ", option, " differs (was ", was, ", now ", now, ")");
  }
  if (name == "model tensors outside the layers") {
    return "the model's tensors outside the decoder layers (embedding, final norm, lm_head) "
           "changed";
  }
  if (absl::StartsWith(name, "model ")) {
    return absl::StrCat("the model file ", name.substr(6), " changed (",
                        was.empty() ? "new" : (now.empty() ? "gone" : "size or header"), ")");
  }
  if (name == "calibration") {
    return absl::StrCat("the calibration token blocks differ (was ", was.substr(0, was.find(' ')),
                        ", now ", now.substr(0, now.find(' ')),
                        " blocks x tokens; same count means other tokens): the calibration "
                        "file or its sampling changed");
  }
  return absl::StrCat(name, " differs");
}

}  // namespace

std::string RunFingerprint::DifferenceFrom(const RunFingerprint& now) const {
  // Plain pairs, not structured bindings: clang 14 (the fuzz build) cannot capture a binding.
  for (const auto& part : parts) {
    const std::string& name = part.first;
    auto it = std::find_if(now.parts.begin(), now.parts.end(),
                           [&](const auto& p) { return p.first == name; });
    const std::string current = it == now.parts.end() ? "" : it->second;
    if (current != part.second) return Describe(name, part.second, current);
  }
  for (const auto& part : now.parts) {
    const std::string& name = part.first;
    auto it =
        std::find_if(parts.begin(), parts.end(), [&](const auto& p) { return p.first == name; });
    if (it == parts.end()) return Describe(name, "", part.second);
  }
  return "";
}

nlohmann::json RunFingerprint::ToJson() const {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& [name, value] : parts) j.push_back({name, value});
  return j;
}

absl::StatusOr<RunFingerprint> RunFingerprint::FromJson(const nlohmann::json& json) {
  if (!json.is_array()) return absl::InvalidArgumentError("fingerprint: expected an array");
  RunFingerprint f;
  for (const nlohmann::json& p : json) {
    if (!p.is_array() || p.size() != 2 || !p[0].is_string() || !p[1].is_string()) {
      return absl::InvalidArgumentError("fingerprint: expected [name, value] pairs");
    }
    f.parts.emplace_back(p[0].get<std::string>(), p[1].get<std::string>());
  }
  return f;
}

const std::string& EngineBuildId() {
  static const std::string id = [] {
    Sha256 sha;
    std::ifstream exe("/proc/self/exe", std::ios::binary);
    std::vector<char> buffer(1 << 20);
    while (exe) {
      exe.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
      sha.Update(absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(buffer.data()),
                                           static_cast<size_t>(exe.gcount())));
    }
    return absl::StrCat(QUANTD_ENGINE_VERSION, " ", sha.HexDigest());
  }();
  return id;
}

std::string CalibrationDigest(const std::vector<std::vector<int32_t>>& blocks) {
  Sha256 ids;
  for (const std::vector<int32_t>& block : blocks) {
    ids.Update(absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(block.data()),
                                         block.size() * sizeof(int32_t)));
  }
  return absl::StrCat(blocks.size(), "x", blocks.empty() ? 0 : blocks[0].size(), " ",
                      ids.HexDigest());
}

absl::StatusOr<RunFingerprint> ComputeRunFingerprint(
    const QuantizeOptions& o, std::string_view backend,
    const std::vector<const SafetensorsFile*>& model_files, const std::string& calibration) {
  RunFingerprint f;
  auto add = [&f](std::string name, std::string value) {
    f.parts.emplace_back(std::move(name), std::move(value));
  };
  add("engine", EngineBuildId());
  add("backend", std::string(backend));
  add("option bits", absl::StrCat(o.bits));
  add("option group_size", absl::StrCat(o.group_size));
  add("option zero_point", o.zero_point ? "true" : "false");
  add("option version", o.version);
  add("option modules_to_not_convert", absl::StrJoin(o.modules_to_not_convert, ","));
  add("option dtype", OutputDtypeName(o.output_dtype));
  // The checkpoint format and its options: a kept layer's staged tensors are in this layout.
  add("option format", CheckpointFormatName(o.format));
  add("option scale_dtype",
      o.scale_dtype.has_value() ? OutputDtypeName(*o.scale_dtype) : "default");
  add("option attention_trials_use_float_kv", o.attention_trials_use_float_kv ? "true" : "false");
  add("option hold_out", o.hold_out ? "true" : "false");
  add("option num_calib", absl::StrCat(o.num_calib));
  add("option max_seq_len", absl::StrCat(o.max_seq_len));
  add("option seed", absl::StrCat(o.seed));
  add("option apply_chat_template", o.apply_chat_template ? "true" : "false");
  add("option system_prompt", Sha256Hex(o.system_prompt));
  for (const char* name : {"config.json", "model.safetensors.index.json"}) {
    const std::string path = (fs::path(o.model_dir) / name).string();
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) continue;
    absl::StatusOr<std::string> content = ReadFileToString(path);
    if (!content.ok()) return content.status();
    add(absl::StrCat("model ", name), Sha256Hex(*content));
  }
  for (const SafetensorsFile* file : model_files) {
    absl::StatusOr<std::string> header = ReadSafetensorsHeader(file->path());
    if (!header.ok()) return header.status();
    std::error_code ec;
    const uintmax_t size = fs::file_size(file->path(), ec);
    add(absl::StrCat("model ", fs::path(file->path()).filename().string()),
        absl::StrCat(ec ? 0 : size, " ", Sha256Hex(*header)));
  }
  add("model tensors outside the layers", NonLayerTensorsDigest(model_files));
  add("calibration", calibration);
  return f;
}

namespace {

// SHA-256 over the tensors of `files` that `select` picks, in name order.
template <typename Select>
std::string TensorsDigest(const std::vector<const SafetensorsFile*>& files, Select select) {
  std::vector<std::pair<const SafetensorsFile*, const SafetensorsEntry*>> tensors;
  for (const SafetensorsFile* file : files) {
    for (const SafetensorsEntry& e : file->entries()) {
      if (select(e.name)) tensors.emplace_back(file, &e);
    }
  }
  std::sort(tensors.begin(), tensors.end(),
            [](const auto& a, const auto& b) { return a.second->name < b.second->name; });
  Sha256 sha;
  for (const auto& [file, e] : tensors) {
    sha.Update(absl::StrCat(e->name, "\n", std::string(DTypeName(e->dtype)), "\n",
                            absl::StrJoin(e->shape, ","), "\n"));
    const absl::Span<const uint8_t> bytes = file->Bytes(*e);
    sha.Update(bytes);
    file->ReleasePages(bytes);
  }
  return sha.HexDigest();
}

}  // namespace

std::string LayerTensorsDigest(const std::vector<const SafetensorsFile*>& files, int layer) {
  const std::string prefix = LayerTensorName(layer, "");
  return TensorsDigest(files,
                       [&](const std::string& name) { return absl::StartsWith(name, prefix); });
}

std::string NonLayerTensorsDigest(const std::vector<const SafetensorsFile*>& files) {
  const std::string layers = LayerTensorName(0, "").substr(0, LayerTensorName(0, "").size() - 2);
  return TensorsDigest(files,
                       [&](const std::string& name) { return !absl::StartsWith(name, layers); });
}

}  // namespace quantd::engine
