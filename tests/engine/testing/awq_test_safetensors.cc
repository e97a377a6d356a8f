#include "awq_test_safetensors.h"

#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "core/dtype.h"
#include "nlohmann/json.hpp"

namespace quantd::engine::testing {

absl::StatusOr<std::map<std::string, TestTensor>> ReadTestSafetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string bytes = ss.str();
  uint64_t header_len = 0;
  std::memcpy(&header_len, bytes.data(), 8);
  const nlohmann::json header =
      nlohmann::json::parse(bytes.substr(8, header_len), nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(path, ": bad header"));
  const char* base = bytes.data() + 8 + header_len;
  std::map<std::string, TestTensor> out;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") continue;
    TestTensor t;
    t.dtype = info["dtype"].get<std::string>();
    t.shape = info["shape"].get<std::vector<int64_t>>();
    const auto offsets = info["data_offsets"].get<std::vector<uint64_t>>();
    const char* p = base + offsets[0];
    const size_t nbytes = offsets[1] - offsets[0];
    if (t.dtype == "I32") {
      t.ints.resize(nbytes / 4);
      std::memcpy(t.ints.data(), p, nbytes);
    } else if (t.dtype == "F32") {
      t.values.resize(nbytes / 4);
      std::memcpy(t.values.data(), p, nbytes);
    } else {
      std::vector<uint16_t> raw(nbytes / 2);
      std::memcpy(raw.data(), p, nbytes);
      t.values.resize(raw.size());
      for (size_t i = 0; i < raw.size(); ++i) {
        t.values[i] = t.dtype == "F16" ? F16ToFloat(raw[i]) : Bf16ToFloat(raw[i]);
      }
    }
    out.emplace(name, std::move(t));
  }
  return out;
}

absl::StatusOr<std::vector<std::vector<int32_t>>> ReadInputIdRows(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::vector<std::vector<int32_t>> rows;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains("input_ids")) continue;
    rows.push_back(j["input_ids"].get<std::vector<int32_t>>());
  }
  return rows;
}

}  // namespace quantd::engine::testing
