#include "pipeline/eval_windows.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "io/file_util.h"

namespace quantd::engine {

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

EvalWindows HeldOutWindows(const std::vector<int32_t>& ids, int64_t block_len) {
  EvalWindows out;
  const int64_t n = static_cast<int64_t>(ids.size());
  if (n < 2 || block_len <= 0) return out;
  const int64_t len = std::min(block_len, n - 1);
  const int64_t windows = std::min((n - 1) / len, std::max<int64_t>(1, kHeldOutMaxTokens / len));
  for (int64_t i = 0; i < windows; ++i) {
    const auto start = ids.begin() + i * len;
    out.inputs.emplace_back(start, start + len);
    out.targets.emplace_back(start + 1, start + len + 1);
  }
  return out;
}

}  // namespace quantd::engine
