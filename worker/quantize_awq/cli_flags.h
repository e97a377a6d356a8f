// Command-line flags and environment of quantize-awq (the seed script's interface plus the
// engine's options; docs/engine-events.md for --events=jsonl).
#ifndef QUANTD_WORKER_QUANTIZE_AWQ_CLI_FLAGS_H_
#define QUANTD_WORKER_QUANTIZE_AWQ_CLI_FLAGS_H_

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "quantd/engine/quantize.h"

namespace quantd::quantize_awq {

// The seed script's defaults.
inline constexpr char kDefaultModelDir[] = "model/YukinoStuki/Qwen2.5-0.5B-Plus-LLM";
inline constexpr char kDefaultOutputDir[] = "model/YukinoStuki/Qwen2.5-0.5B-Plus-AWQ";
inline constexpr char kDefaultCalibJsonl[] = "calib_8192.jsonl";

struct CliConfig {
  engine::QuantizeOptions options;
  // Every path the run opens must lie beneath one of these (path_guard); empty = anywhere.
  std::vector<std::string> allowed_roots;
  bool events_jsonl = false;
  // --trust_remote_code / --no_trust_remote_code were given: accepted for the seed script's
  // interface, with no effect (quantd never executes model code); main warns once.
  bool trust_remote_code_given = false;
  bool help = false;
};

// Reads an environment variable (std::getenv in production, a map in tests).
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;

// Reads a whole file ("-" = stdin); --options_json goes through it.
using FileReader = std::function<absl::StatusOr<std::string>(const std::string& path)>;

// Parses argv (without argv[0]). InvalidArgument names the flag and what was expected.
// --options_json FILE ("-": stdin) holds one JSON object of flags, keys without "--": strings,
// integers, true for a switch, and for allowed_roots a list; quantd-worker passes a job this way
// (no argv size limit). Flags after it override it.
absl::StatusOr<CliConfig> ParseFlags(const std::vector<std::string>& args, const EnvLookup& env,
                                     const FileReader& read_file = {});

std::string UsageText();

}  // namespace quantd::quantize_awq

#endif  // QUANTD_WORKER_QUANTIZE_AWQ_CLI_FLAGS_H_
