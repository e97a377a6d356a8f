#include "awq_reader_run.h"

#include <cstdio>
#include <cstdlib>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "nlohmann/json.hpp"

namespace quantd::engine::testing {
namespace {

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? std::string(value) : fallback;
}

// One shell word: single quotes, with embedded ones closed, escaped and reopened.
std::string ShellQuoted(const std::string& s) {
  return absl::StrCat("'", absl::StrReplaceAll(s, {{"'", "'\\''"}}), "'");
}

}  // namespace

absl::StatusOr<AwqReaderResult> RunAwqReader(const AwqReaderRun& run) {
  const std::string python = EnvOr("QUANTD_TEST_PYTHON", "/usr/bin/python3");
  const std::string script =
      EnvOr("QUANTD_TEST_READER", std::string(QUANTD_SOURCE_DIR) + "/tests/tools/awq_reader.py");
  std::string cmd = absl::StrCat(ShellQuoted(python), " ", ShellQuoted(script), " --float ",
                                 ShellQuoted(run.float_dir), " --calib ",
                                 ShellQuoted(run.calib_jsonl), " --rows ", run.rows);
  if (run.quantized_dir.empty()) {
    absl::StrAppend(&cmd, " --rtn ", run.rtn_group_size);
  } else {
    absl::StrAppend(&cmd, " --quantized ", ShellQuoted(run.quantized_dir));
  }
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) return absl::InternalError(absl::StrCat("cannot start: ", cmd));
  std::string out;
  char buffer[4096];
  for (size_t n; (n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0;) out.append(buffer, n);
  const int status = pclose(pipe);
  if (status != 0) {
    return absl::InternalError(absl::StrCat("the reader failed (status ", status, "): ", cmd));
  }
  const nlohmann::json j = nlohmann::json::parse(out, nullptr, false);
  if (j.is_discarded() || !j.contains("relative_logits_error") ||
      !j["relative_logits_error"].is_number() || !j.contains("float_nll") ||
      !j["float_nll"].is_number()) {
    return absl::InternalError(absl::StrCat(
        "the reader printed no relative_logits_error / float_nll: ", cmd, " printed: ", out));
  }
  return AwqReaderResult{j["relative_logits_error"].get<double>(), j["float_nll"].get<double>()};
}

absl::StatusOr<double> ReaderRelativeLogitsError(const AwqReaderRun& run) {
  absl::StatusOr<AwqReaderResult> r = RunAwqReader(run);
  if (!r.ok()) return r.status();
  return r->relative_logits_error;
}

}  // namespace quantd::engine::testing
