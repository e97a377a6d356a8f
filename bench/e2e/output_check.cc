#include "output_check.h"

#include <cmath>
#include <filesystem>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/dtype.h"
#include "io/checkpoint_reader.h"
#include "io/json_file.h"
#include "model/architecture.h"
#include "model/layer_weights.h"

namespace quantd::bench {
namespace {

constexpr int kGroup = 128;

std::string Shape(const std::vector<int64_t>& s) {
  return absl::StrCat("[", absl::StrJoin(s, ", "), "]");
}

// "" when `name` is there with `dtype` and `shape`.
std::string CheckTensor(const engine::CheckpointReader& r, const std::string& name,
                        engine::DType dtype, const std::vector<int64_t>& shape) {
  const engine::SafetensorsEntry* e = r.Find(name);
  if (e == nullptr) return name + " missing";
  if (e->dtype != dtype || e->shape != shape) {
    return absl::StrCat(name, ": ", std::string(engine::DTypeName(e->dtype)), " ", Shape(e->shape),
                        ", expected ", std::string(engine::DTypeName(dtype)), " ", Shape(shape));
  }
  return "";
}

}  // namespace

std::string CheckAwqOutput(const std::string& out_dir, const engine::ModelConfig& c, int blocks,
                           int len, const nlohmann::json& report) {
  namespace fs = std::filesystem;
  using engine::DType;
  for (const char* f : {"config.json", "quant_config.json", "quant_report.json"}) {
    if (!fs::is_regular_file(fs::path(out_dir) / f)) return absl::StrCat(f, " missing");
  }
  absl::StatusOr<nlohmann::json> cfg = engine::ReadJsonFile(out_dir + "/config.json");
  if (!cfg.ok()) return std::string(cfg.status().message());
  const nlohmann::json q = cfg->value("quantization_config", nlohmann::json::object());
  if (q.value("quant_method", "") != "awq" || q.value("bits", 0) != 4 ||
      q.value("group_size", 0) != kGroup || q.value("version", "") != "gemm") {
    return "config.json: quantization_config is not awq / 4 bits / group 128 / gemm";
  }
  const nlohmann::json cal = report.value("calibration", nlohmann::json::object());
  // Pre-tokenized rows of exactly `len` tokens give exactly `blocks` blocks; text calibration
  // (blocks <= 0) gives what its texts hold.
  const bool exact = blocks > 0;
  if (cal.value("block_len", -1) != len || cal.value("blocks", 0) <= 0 ||
      (exact && (cal.value("blocks", -1) != blocks || cal.value("tokens_dropped", -1) != 0))) {
    return absl::StrCat("calibration: ", cal.value("blocks", -1), " blocks of ",
                        cal.value("block_len", -1), " (", cal.value("tokens_dropped", -1),
                        " tokens dropped), expected ", exact ? absl::StrCat(blocks) : "some", " x ",
                        len);
  }
  absl::StatusOr<std::unique_ptr<engine::CheckpointReader>> r =
      engine::CheckpointReader::Open(out_dir);
  if (!r.ok()) return std::string(r.status().message());
  const engine::CheckpointReader& ck = **r;
  int64_t expected = 2 + (c.tie_word_embeddings ? 0 : 1);  // embedding, final norm, lm_head
  std::string problem =
      CheckTensor(ck, engine::kEmbedTokensName, DType::kF16, {c.vocab_size, c.hidden_size});
  if (problem.empty())
    problem = CheckTensor(ck, engine::kFinalNormName, DType::kF16, {c.hidden_size});
  if (problem.empty() && !c.tie_word_embeddings) {
    problem = CheckTensor(ck, engine::kLmHeadName, DType::kF16, {c.vocab_size, c.hidden_size});
  }
  for (int l = 0; l < c.num_hidden_layers && problem.empty(); ++l) {
    for (const engine::LayerTensorSpec& t : c.arch->layer_tensors(c)) {
      if (!problem.empty()) break;
      const std::string base = engine::LayerTensorName(l, t.name);
      if (!t.linear) {
        problem = CheckTensor(ck, base + ".weight", DType::kF16, t.shape);
        ++expected;
        continue;
      }
      const int64_t out = t.shape[0], in = t.shape[1];
      problem = CheckTensor(ck, base + ".qweight", DType::kI32, {in, out / 8});
      if (problem.empty()) {
        problem = CheckTensor(ck, base + ".qzeros", DType::kI32, {in / kGroup, out / 8});
      }
      if (problem.empty()) {
        problem = CheckTensor(ck, base + ".scales", DType::kF16, {in / kGroup, out});
      }
      expected += 3;
      if (problem.empty() && t.bias) {
        problem = CheckTensor(ck, base + ".bias", DType::kF16, {out});
        ++expected;
      }
    }
  }
  if (!problem.empty()) return problem;
  int64_t found = 0;
  for (const std::string& file : ck.files()) {
    absl::StatusOr<std::unique_ptr<engine::SafetensorsFile>> f =
        engine::SafetensorsFile::Open(file);
    if (!f.ok()) return std::string(f.status().message());
    found += static_cast<int64_t>((*f)->entries().size());
  }
  if (found != expected) return absl::StrCat(found, " tensors, expected ", expected);
  // The last quantized Linear of the last layer (down_proj; a MoE layer's last expert's): its
  // scales finite and positive.
  std::string last;
  for (const engine::LinearSpec& l : engine::LayerLinears(c)) last = l.source;
  const std::string scales = engine::LayerTensorName(c.num_hidden_layers - 1, last) + ".scales";
  absl::StatusOr<engine::Tensor> s = ck.ReadFloat(scales);
  if (!s.ok()) return std::string(s.status().message());
  for (float v : s->data) {
    if (!std::isfinite(v) || v <= 0.0f) return absl::StrCat(scales, " holds ", v);
  }
  return "ok";
}

}  // namespace quantd::bench
