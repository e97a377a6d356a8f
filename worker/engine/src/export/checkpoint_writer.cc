#include "export/checkpoint_writer.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "io/status_macros.h"
#include "nlohmann/json.hpp"

namespace quantd::engine {
namespace {

constexpr char kSingleFile[] = "model.safetensors";
constexpr char kIndexFile[] = "model.safetensors.index.json";

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

}  // namespace

std::vector<ShardPlan> PlanShards(const std::vector<PlannedTensor>& state_dict,
                                  int64_t max_shard_bytes) {
  std::vector<ShardPlan> shards;
  ShardPlan current;
  int64_t current_size = 0;
  for (const PlannedTensor& t : state_dict) {
    const int64_t size = t.byte_size();
    if (size > max_shard_bytes) {
      shards.push_back({"", {t}});
      continue;
    }
    if (current_size + size > max_shard_bytes) {
      shards.push_back(std::move(current));
      current = ShardPlan();
      current_size = 0;
    }
    current.tensors.push_back(t);
    current_size += size;
  }
  if (!current.tensors.empty()) shards.push_back(std::move(current));
  if (shards.empty()) shards.emplace_back();  // An empty state dict still gives one file.
  const size_t n = shards.size();
  for (size_t i = 0; i < n; ++i) {
    shards[i].file_name =
        n == 1 ? kSingleFile : absl::StrFormat("model-%05d-of-%05d.safetensors", i + 1, n);
  }
  return shards;
}

absl::StatusOr<std::unique_ptr<CheckpointWriter>> CheckpointWriter::Create(
    StagedFiles* staged, std::vector<PlannedTensor> state_dict,
    std::map<std::string, std::string> dropped, int64_t max_shard_bytes, bool reuse_staged) {
  std::unique_ptr<CheckpointWriter> w(new CheckpointWriter());
  w->staged_ = staged;
  w->state_dict_ = std::move(state_dict);
  w->dropped_ = std::move(dropped);
  w->shards_ = PlanShards(w->state_dict_, max_shard_bytes);
  const bool single = w->shards_.size() == 1;
  for (size_t i = 0; i < w->shards_.size(); ++i) {
    const ShardPlan& shard = w->shards_[i];
    std::map<std::string, std::string> metadata = {{"format", "pt"}};
    if (single) metadata.insert(w->dropped_.begin(), w->dropped_.end());
    QUANTD_ASSIGN_OR_RETURN(std::string tmp, staged->Add(shard.file_name));
    QUANTD_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsWriter> writer,
                            SafetensorsWriter::Create(tmp, shard.tensors, metadata, reuse_staged));
    for (const PlannedTensor& t : shard.tensors) {
      if (!w->shard_of_.emplace(t.name, i).second) {
        return absl::InternalError(absl::StrCat("tensor \"", t.name, "\" planned twice"));
      }
    }
    w->writers_.push_back(std::move(writer));
  }
  return w;
}

SafetensorsWriter* CheckpointWriter::WriterOf(std::string_view name) const {
  auto it = shard_of_.find(name);
  return it == shard_of_.end() ? nullptr : writers_[it->second].get();
}

const PlannedTensor* CheckpointWriter::Find(std::string_view name) const {
  SafetensorsWriter* w = WriterOf(name);
  return w == nullptr ? nullptr : w->Find(name);
}

absl::Status CheckpointWriter::Write(std::string_view name, absl::Span<const uint8_t> bytes) {
  SafetensorsWriter* w = WriterOf(name);
  if (w == nullptr) {
    return absl::InternalError(
        absl::StrCat("tensor \"", std::string(name), "\" is not part of the output plan"));
  }
  return w->Write(name, bytes);
}

absl::Status CheckpointWriter::WritePart(std::string_view name, uint64_t offset,
                                         absl::Span<const uint8_t> bytes) {
  SafetensorsWriter* w = WriterOf(name);
  if (w == nullptr) {
    return absl::InternalError(
        absl::StrCat("tensor \"", std::string(name), "\" is not part of the output plan"));
  }
  return w->WritePart(name, offset, bytes);
}

absl::Status CheckpointWriter::WriteFloat(std::string_view name, const Tensor& tensor) {
  const PlannedTensor* plan = Find(name);
  if (plan != nullptr && plan->shape != tensor.shape) {
    return absl::InternalError(absl::StrCat("tensor \"", plan->name, "\": shape ",
                                            ShapeString(tensor.shape), " given, ",
                                            ShapeString(plan->shape), " planned"));
  }
  return WriteFloatPart(name, 0, tensor.data);
}

absl::Status CheckpointWriter::WriteFloatPart(std::string_view name, int64_t first,
                                              absl::Span<const float> values) {
  const PlannedTensor* plan = Find(name);
  if (plan == nullptr) {
    return absl::InternalError(
        absl::StrCat("tensor \"", std::string(name), "\" is not part of the output plan"));
  }
  if (IsIntegerDType(plan->dtype)) {
    return absl::InternalError(absl::StrCat("tensor \"", plan->name, "\" is planned as ",
                                            std::string(DTypeName(plan->dtype))));
  }
  const size_t n = values.size();
  const size_t width = static_cast<size_t>(DTypeSize(plan->dtype));
  std::vector<uint8_t> bytes(n * width);
  if (plan->dtype == DType::kF32) {
    std::memcpy(bytes.data(), values.data(), bytes.size());
  } else {
    const bool bf16 = plan->dtype == DType::kBF16;
    for (size_t i = 0; i < n; ++i) {
      uint16_t h = bf16 ? FloatToBf16(values[i]) : FloatToF16(values[i]);
      bytes[2 * i] = static_cast<uint8_t>(h & 0xff);
      bytes[2 * i + 1] = static_cast<uint8_t>(h >> 8);
    }
  }
  return WritePart(name, static_cast<uint64_t>(first) * width, bytes);
}

absl::Status CheckpointWriter::WriteFloatFrom(std::string_view name, int64_t first, DType source,
                                              absl::Span<const uint8_t> bytes) {
  const PlannedTensor* plan = Find(name);
  if (plan == nullptr) {
    return absl::InternalError(
        absl::StrCat("tensor \"", std::string(name), "\" is not part of the output plan"));
  }
  if (IsIntegerDType(source) || IsIntegerDType(plan->dtype)) {
    return absl::InternalError(absl::StrCat("tensor \"", plan->name, "\": not a float tensor"));
  }
  const size_t width = static_cast<size_t>(DTypeSize(source));
  const int64_t n = static_cast<int64_t>(bytes.size() / width);
  if (bytes.size() % width != 0 || first < 0 || first + n > Tensor::NumElements(plan->shape)) {
    return absl::InternalError(absl::StrCat("tensor \"", plan->name, "\": ", bytes.size(),
                                            " source bytes of ", std::string(DTypeName(source)),
                                            " at element ", first, " do not fit its ",
                                            Tensor::NumElements(plan->shape), " elements"));
  }
  if (source == plan->dtype) return WritePart(name, static_cast<uint64_t>(first) * width, bytes);
  constexpr int64_t kSlice = int64_t{1} << 22;  // elements per conversion slice (16 MiB float32)
  std::vector<float> values(static_cast<size_t>(std::min(n, kSlice)));
  for (int64_t done = 0; done < n; done += kSlice) {
    const int64_t m = std::min(kSlice, n - done);
    ToFloat32(source, bytes.data() + static_cast<size_t>(done) * width, static_cast<size_t>(m),
              values.data());
    QUANTD_RETURN_IF_ERROR(WriteFloatPart(
        name, first + done, absl::Span<const float>(values.data(), static_cast<size_t>(m))));
  }
  return absl::OkStatus();
}

template <typename Int>
absl::Status CheckpointWriter::WriteInts(std::string_view name, DType dtype,
                                         absl::Span<const Int> values) {
  const PlannedTensor* plan = Find(name);
  if (plan != nullptr && plan->dtype != dtype) {
    return absl::InternalError(absl::StrCat("tensor \"", plan->name, "\" is planned as ",
                                            std::string(DTypeName(plan->dtype)), ", not ",
                                            std::string(DTypeName(dtype))));
  }
  return Write(name, absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(values.data()),
                                               values.size() * sizeof(Int)));
}

absl::Status CheckpointWriter::WriteInt32(std::string_view name, absl::Span<const int32_t> values) {
  return WriteInts(name, DType::kI32, values);
}

absl::Status CheckpointWriter::WriteInt64(std::string_view name, absl::Span<const int64_t> values) {
  return WriteInts(name, DType::kI64, values);
}

std::vector<std::string> CheckpointWriter::Missing() const {
  std::vector<std::string> missing;
  for (const auto& w : writers_) {
    std::vector<std::string> m = w->Missing();
    missing.insert(missing.end(), m.begin(), m.end());
  }
  return missing;
}

bool CheckpointWriter::reused() const {
  for (const auto& w : writers_) {
    if (!w->reused()) return false;
  }
  return true;
}

absl::Status CheckpointWriter::MarkWritten(std::string_view name) {
  SafetensorsWriter* w = WriterOf(name);
  if (w == nullptr) {
    return absl::InternalError(
        absl::StrCat("tensor \"", std::string(name), "\" is not part of the output plan"));
  }
  return w->MarkWritten(name);
}

void CheckpointWriter::StartWriteback() const {
  for (const auto& w : writers_) w->StartWriteback();
}

absl::Status CheckpointWriter::Finish() {
  for (const auto& w : writers_) QUANTD_RETURN_IF_ERROR(w->Finish());
  if (shards_.size() == 1) return absl::OkStatus();
  // huggingface_hub: {"metadata": {"total_size", dropped...}, "weight_map"} with indent=2, in
  // shard order then state-dict order within a shard.
  nlohmann::ordered_json metadata = nlohmann::ordered_json::object();
  int64_t total = 0;
  for (const PlannedTensor& t : state_dict_) total += t.byte_size();
  metadata["total_size"] = total;
  for (const auto& [k, v] : dropped_) metadata[k] = v;
  nlohmann::ordered_json weight_map = nlohmann::ordered_json::object();
  for (const ShardPlan& shard : shards_) {
    for (const PlannedTensor& t : shard.tensors) weight_map[t.name] = shard.file_name;
  }
  nlohmann::ordered_json index = nlohmann::ordered_json::object();
  index["metadata"] = std::move(metadata);
  index["weight_map"] = std::move(weight_map);
  return staged_->AddContent(kIndexFile, index.dump(2, ' ', /*ensure_ascii=*/true));
}

std::vector<std::string> CheckpointWriter::file_names() const {
  std::vector<std::string> names;
  for (const ShardPlan& s : shards_) names.push_back(s.file_name);
  if (shards_.size() > 1) names.push_back(kIndexFile);
  return names;
}

}  // namespace quantd::engine
