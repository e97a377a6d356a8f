#include "pipeline/calibration_input.h"

#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "io/file_util.h"
#include "nlohmann/json.hpp"

namespace quantd::engine {
namespace {

// One calibration row: either token ids or a text.
struct Row {
  bool valid = false;
  std::vector<int32_t> ids;
  std::string text;
  bool tokenized = false;
};

Row ParseRow(const std::string& line) {
  Row row;
  if (absl::StripAsciiWhitespace(line).empty()) return row;
  const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return row;
  if (auto it = j.find("input_ids"); it != j.end() && it->is_array()) {
    for (const auto& v : *it) {
      if (!v.is_number_integer()) return row;
      row.ids.push_back(v.get<int32_t>());
    }
    row.valid = !row.ids.empty();
    row.tokenized = true;
    return row;
  }
  if (auto it = j.find("text"); it != j.end() && it->is_string()) {
    row.text = std::string(absl::StripAsciiWhitespace(it->get<std::string>()));
    row.valid = !row.text.empty();
  }
  return row;
}

}  // namespace

absl::StatusOr<bool> CalibrationIsPreTokenized(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("calib_jsonl: cannot open ", path));
  std::string line;
  while (std::getline(in, line)) {
    const Row row = ParseRow(line);
    if (row.valid) return row.tokenized;
  }
  return false;
}

absl::StatusOr<CalibrationBlocks> LoadCalibrationBlocks(const QuantizeOptions& options,
                                                        const tokenizer::Tokenizer* tokenizer) {
  std::ifstream in(options.calib_jsonl);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat("calib_jsonl: cannot open ", options.calib_jsonl));
  }
  CalibrationBlocks out;
  out.seq_len = options.max_seq_len;
  std::vector<int32_t> stream;
  std::string line;
  while (out.texts_used < options.num_calib && std::getline(in, line)) {
    ++out.rows_read;
    Row row = ParseRow(line);
    if (!row.valid) {
      ++out.rows_skipped;
      continue;
    }
    if (!row.tokenized) {
      if (tokenizer == nullptr) {
        return absl::FailedPreconditionError(
            absl::StrCat(options.calib_jsonl, " line ", out.rows_read,
                         ": text rows need the model's tokenizer"));
      }
      absl::StatusOr<std::vector<int32_t>> ids =
          tokenizer->Encode(row.text, /*add_special_tokens=*/true);
      if (!ids.ok()) return ids.status();
      row.ids = std::move(*ids);
    }
    if (static_cast<int64_t>(row.ids.size()) > options.max_seq_len) {
      ++out.texts_too_long;
      continue;
    }
    stream.insert(stream.end(), row.ids.begin(), row.ids.end());
    ++out.texts_used;
  }
  out.tokens = static_cast<int64_t>(stream.size());
  const int64_t n_blocks = out.tokens / out.seq_len;
  if (n_blocks == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(options.calib_jsonl, ": ", out.texts_used, " usable texts give ", out.tokens,
                     " tokens, fewer than one block of max_seq_len ", out.seq_len,
                     "; add calibration texts or lower --max_seq_len"));
  }
  for (int64_t b = 0; b < n_blocks; ++b) {
    out.blocks.emplace_back(stream.begin() + b * out.seq_len,
                            stream.begin() + (b + 1) * out.seq_len);
  }
  return out;
}

absl::StatusOr<EvalWindows> LoadEvalWindows(const std::string& path,
                                            const tokenizer::Tokenizer& tokenizer) {
  absl::StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok()) return text.status();
  absl::StatusOr<std::vector<int32_t>> ids = tokenizer.Encode(*text, /*add_special_tokens=*/false);
  if (!ids.ok()) return ids.status();
  const int64_t n = static_cast<int64_t>(ids->size());
  const int64_t windows = std::min<int64_t>(kEvalMaxWindows, (n - 1) / kEvalWindowTokens);
  if (windows <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "eval_text ", path, ": ", n, " tokens, fewer than one window of ", kEvalWindowTokens + 1));
  }
  EvalWindows out;
  for (int64_t i = 0; i < windows; ++i) {
    const auto start = ids->begin() + i * kEvalWindowTokens;
    out.inputs.emplace_back(start, start + kEvalWindowTokens);
    out.targets.emplace_back(start + 1, start + kEvalWindowTokens + 1);
  }
  return out;
}

}  // namespace quantd::engine
