// quantize-awq: the one-shot local quantizer with the interface of the seed's quantize_awq.py.
// Exit codes: 0 succeeded, 1 failed, 2 usage error, 3 cancelled (SIGTERM / SIGINT).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli_flags.h"
#include "console_observer.h"
#include "make_calib_command.h"
#include "path_guard/confined_io.h"
#include "quantd/engine/quantize.h"
#include "tokenize_command.h"

namespace {

quantd::engine::CancellationToken* g_cancel = nullptr;

extern "C" void OnSignal(int) {
  if (g_cancel != nullptr) g_cancel->Cancel();  // a lock-free atomic store
}

// The file type of `path` as the run will open it (beneath --allowed_roots when given), or 0;
// `*escapes` says when it is refused for leading outside the roots.
mode_t FileType(const std::string& path, std::string* escapes = nullptr) {
  const int fd = quantd::path_guard::Open(path, O_PATH);
  if (fd < 0) {
    if (escapes != nullptr && (errno == EXDEV || errno == ELOOP)) {
      *escapes = path + " " + quantd::path_guard::ErrorText(errno);
    }
    return 0;
  }
  struct stat st;
  const mode_t type = fstat(fd, &st) == 0 ? (st.st_mode & S_IFMT) : 0;
  close(fd);
  return type;
}

// The seed script's checks before any work: the model directory and its config.json, and the
// calibration file (with what it must hold and how to make one); a path leading out of the allowed
// roots is said as such.
absl::Status ValidatePaths(const quantd::engine::QuantizeOptions& o) {
  std::string escapes;
  for (const std::string& path : {o.model_dir, o.model_dir + "/config.json", o.calib_jsonl}) {
    if (FileType(path, &escapes) == 0 && !escapes.empty()) {
      return absl::InvalidArgumentError(escapes);
    }
  }
  if (FileType(o.model_dir) != S_IFDIR) {
    return absl::InvalidArgumentError(
        absl::StrCat("--model_dir is not a directory: ", o.model_dir,
                     " (set --model_dir or AWQ_MODEL_DIR to a Hugging Face model directory)"));
  }
  if (FileType(o.model_dir + "/config.json") != S_IFREG) {
    return absl::InvalidArgumentError(
        absl::StrCat("--model_dir has no config.json: ", o.model_dir));
  }
  if (FileType(o.calib_jsonl) != S_IFREG) {
    return absl::InvalidArgumentError(absl::StrCat("calibration file not found: ", o.calib_jsonl,
                                                   "\n  set --calib_jsonl or AWQ_CALIB_JSONL; ",
                                                   quantd::engine::kCalibJsonlFormatHint));
  }
  return absl::OkStatus();
}

int ExitCode(const absl::Status& s) {
  if (s.ok()) return 0;
  return s.code() == absl::StatusCode::kCancelled ? 3 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  using quantd::quantize_awq::ConsoleObserver;
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && args[0] == "tokenize") {
    return quantd::quantize_awq::RunTokenize({args.begin() + 1, args.end()}, std::cin, stdout,
                                             stderr);
  }
  if (!args.empty() && args[0] == "make-calib") {
    return quantd::quantize_awq::RunMakeCalib({args.begin() + 1, args.end()}, stdout, stderr);
  }
  absl::StatusOr<quantd::quantize_awq::CliConfig> cli = quantd::quantize_awq::ParseFlags(
      args,
      [](const std::string& name) -> std::optional<std::string> {
        const char* v = std::getenv(name.c_str());
        if (v == nullptr || *v == '\0') return std::nullopt;
        return std::string(v);
      },
      [](const std::string& path) -> absl::StatusOr<std::string> {
        std::ifstream file;
        if (path != "-") file.open(path, std::ios::binary);
        std::istream& in = path == "-" ? std::cin : file;
        if (!in) return absl::InvalidArgumentError(absl::StrCat("cannot read ", path));
        std::stringstream text;
        text << in.rdbuf();
        return text.str();
      });
  if (!cli.ok()) {
    std::fprintf(stderr, "quantize-awq: %s\n\n%s", std::string(cli.status().message()).c_str(),
                 quantd::quantize_awq::UsageText().c_str());
    return 2;
  }
  if (cli->help) {
    std::fputs(quantd::quantize_awq::UsageText().c_str(), stdout);
    return 0;
  }
  quantd::engine::CancellationToken cancel;
  g_cancel = &cancel;
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);

  // Artifact digests are only printed as events (the daemon reads them).
  cli->options.artifact_digests = cli->events_jsonl;
  ConsoleObserver observer(cli->events_jsonl, stdout, stderr);
  if (cli->trust_remote_code_given) {
    observer.OnLog(quantd::engine::LogLevel::kWarning,
                   "--trust_remote_code has no effect: quantd never executes model code (it reads "
                   "config.json, safetensors and tokenizer files only)");
  }
  const quantd::engine::QuantizeOptions& o = cli->options;
  if (!cli->allowed_roots.empty()) {
    // From here on every open of the run stays beneath the roots (path_guard).
    if (absl::Status s = quantd::path_guard::ConfineProcess(cli->allowed_roots); !s.ok()) {
      s = absl::InvalidArgumentError(absl::StrCat("--allowed_roots: ", s.message()));
      observer.Result(s);
      return ExitCode(s);
    }
  }
  if (absl::Status s = ValidatePaths(o); !s.ok()) {
    observer.Result(s);
    return ExitCode(s);
  }
  observer.Say(absl::StrCat("quant_config = {\"zero_point\": ", o.zero_point ? "true" : "false",
                            ", \"q_group_size\": ", o.group_size, ", \"w_bit\": ", o.bits,
                            ", \"version\": \"GEMM\"}"));
  observer.Say(absl::StrCat("modules_to_not_convert = [",
                            absl::StrJoin(o.modules_to_not_convert, ", "), "]"));
  observer.Say(absl::StrCat("model_dir = ", o.model_dir, "; calib_jsonl = ", o.calib_jsonl,
                            " (num_calib ", o.num_calib, ", max_seq_len ", o.max_seq_len,
                            o.apply_chat_template ? ", chat template" : ", plain texts", ")"));
  absl::StatusOr<quantd::engine::QuantizeResult> result =
      quantd::engine::Quantize(o, &observer, &cancel);
  if (result.ok()) {
    observer.Say(absl::StrCat("saved quantized model to: ", result->output_dir));
    observer.Say(absl::StrCat("report: ", result->report_path));
  }
  observer.Result(result.status());
  return ExitCode(result.status());
}
