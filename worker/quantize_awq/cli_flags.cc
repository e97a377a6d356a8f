#include "cli_flags.h"

#include <charconv>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"

namespace quantd::quantize_awq {
namespace {

enum class Kind { kString, kInt, kSwitch };

struct FlagSpec {
  Kind kind;
  const char* help;
};

const std::map<std::string, FlagSpec>& Flags() {
  static const auto* flags = new std::map<std::string, FlagSpec>{
      {"model_dir", {Kind::kString, "HF model directory (env AWQ_MODEL_DIR)"}},
      {"output_dir", {Kind::kString, "output directory (env AWQ_OUTPUT_DIR)"}},
      {"calib_jsonl", {Kind::kString, "calibration jsonl (env AWQ_CALIB_JSONL)"}},
      {"num_calib", {Kind::kInt, "calibration texts sampled (8192)"}},
      {"max_seq_len", {Kind::kInt, "calibration block length (2048)"}},
      {"group_size",
       {Kind::kInt, "quantization group size: 32, 64, 128 or -1 (per-channel) (128)"}},
      {"zero_point",
       {Kind::kString, "true|false: asymmetric with zero points, or symmetric (true)"}},
      {"format",
       {Kind::kString, "gemm|compressed-tensors: AutoAWQ GEMM or pack-quantized W4A16 (gemm)"}},
      {"scale_dtype",
       {Kind::kString,
        "float16|bfloat16: dtype of the scales (gemm: float16; compressed-tensors: --dtype)"}},
      {"max_ppl_increase",
       {Kind::kString,
        "percent: fail when the quantized model's held-out perplexity exceeds the float "
        "model's by more (off)"}},
      {"seed", {Kind::kInt, "sampling seed (42)"}},
      {"system_prompt", {Kind::kString, "system message of chat-wrapped texts (seed's)"}},
      {"dtype",
       {Kind::kString,
        "auto|float16|bfloat16: float tensors and config dtype of the output (auto: float16, "
        "bfloat16 for Gemma)"}},
      {"eval_text",
       {Kind::kString,
        "held-out text for the quality report (default: a slice of --calib_jsonl is held out)"}},
      {"dump_calib", {Kind::kString, "write the calibration blocks as JSON"}},
      {"modules_to_not_convert",
       {Kind::kString, "comma-separated module names or re:<regex> patterns (lm_head)"}},
      {"backend", {Kind::kString, "auto|cpu|cuda (auto)"}},
      {"gpus",
       {Kind::kInt,
        "GPUs the calibration is split across, devices 0..N-1 (1); on the CPU backend, threads"}},
      {"events", {Kind::kString, "jsonl: machine-readable events on stdout"}},
      {"no_chat_template", {Kind::kSwitch, "use calibration texts without chat wrapping"}},
      {"restart",
       {Kind::kSwitch,
        "discard the finished layers an interrupted run left in output_dir (by default a run "
        "into such an output_dir resumes from them)"}},
      {"trust_remote_code",
       {Kind::kSwitch,
        "no effect (accepted for the seed's interface): quantd never executes "
        "model code, it reads config.json, safetensors and tokenizer files only"}},
      {"no_trust_remote_code", {Kind::kSwitch, "no effect, as --trust_remote_code"}},
      {"chat_template_fallback",
       {Kind::kSwitch,
        "wrap texts as ChatML when the model's chat template does not parse "
        "(default: fail)"}},
      {"allowed_roots",
       {Kind::kString,
        "comma-separated directories every path must stay beneath (no symlink "
        "out of them is followed)"}},
      {"options_json", {Kind::kString, "FILE (- = stdin): a JSON object of these flags"}},
      {"help", {Kind::kSwitch, "this text"}},
  };
  return *flags;
}

absl::StatusOr<int64_t> ParseInt(const std::string& flag, const std::string& value) {
  int64_t v = 0;
  const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || ptr != value.data() + value.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": expected an integer, got \"", value, "\""));
  }
  return v;
}

absl::Status Apply(const std::string& flag, const std::string& value, CliConfig& c) {
  engine::QuantizeOptions& o = c.options;
  if (flag == "model_dir") {
    o.model_dir = value;
  } else if (flag == "output_dir") {
    o.output_dir = value;
  } else if (flag == "calib_jsonl") {
    o.calib_jsonl = value;
  } else if (flag == "system_prompt") {
    o.system_prompt = value;
  } else if (flag == "eval_text") {
    o.eval_text = value;
  } else if (flag == "dump_calib") {
    o.dump_calib = value;
  } else if (flag == "dtype" || flag == "scale_dtype") {
    const std::optional<engine::OutputDtype> dtype = engine::ParseOutputDtype(value);
    if (!dtype.has_value() || (flag == "scale_dtype" && *dtype == engine::OutputDtype::kAuto)) {
      return absl::InvalidArgumentError(absl::StrCat("--", flag, ": expected ",
                                                     flag == "dtype" ? "auto, " : "",
                                                     "float16 or bfloat16, got \"", value, "\""));
    }
    (flag == "dtype" ? o.output_dtype : o.scale_dtype.emplace()) = *dtype;
  } else if (flag == "format") {
    const std::optional<engine::CheckpointFormat> format = engine::ParseCheckpointFormat(value);
    if (!format.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--format: expected gemm or compressed-tensors, got \"", value, "\""));
    }
    o.format = *format;
  } else if (flag == "zero_point") {
    if (value != "true" && value != "false") {
      return absl::InvalidArgumentError(
          absl::StrCat("--zero_point: expected true or false, got \"", value, "\""));
    }
    o.zero_point = value == "true";
  } else if (flag == "max_ppl_increase") {
    double percent = 0.0;
    const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), percent);
    if (ec != std::errc() || ptr != value.data() + value.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--max_ppl_increase: expected a number (percent), got \"", value, "\""));
    }
    o.max_perplexity_increase_percent = percent;
  } else if (flag == "backend") {
    if (value == "auto") {
      o.backend = engine::BackendKind::kAuto;
    } else if (value == "cpu") {
      o.backend = engine::BackendKind::kCpu;
    } else if (value == "cuda") {
      o.backend = engine::BackendKind::kCuda;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("--backend: expected auto, cpu or cuda, got \"", value, "\""));
    }
  } else if (flag == "events") {
    if (value != "jsonl") {
      return absl::InvalidArgumentError(
          absl::StrCat("--events: expected jsonl, got \"", value, "\""));
    }
    c.events_jsonl = true;
  } else if (flag == "modules_to_not_convert") {
    o.modules_to_not_convert.clear();
    for (absl::string_view m : absl::StrSplit(value, ',', absl::SkipWhitespace())) {
      o.modules_to_not_convert.emplace_back(m);
    }
  } else if (flag == "no_chat_template") {
    o.apply_chat_template = false;
  } else if (flag == "restart") {
    o.restart = true;
  } else if (flag == "trust_remote_code" || flag == "no_trust_remote_code") {
    c.trust_remote_code_given = true;
  } else if (flag == "chat_template_fallback") {
    o.chat_template_fallback = true;
  } else if (flag == "allowed_roots") {
    c.allowed_roots.clear();
    for (absl::string_view root : absl::StrSplit(value, ',', absl::SkipEmpty())) {
      c.allowed_roots.emplace_back(root);
    }
  } else if (flag == "help") {
    c.help = true;
  } else {
    absl::StatusOr<int64_t> v = ParseInt(flag, value);
    if (!v.ok()) return v.status();
    if (*v <= 0 && flag != "seed" && !(flag == "group_size" && *v == engine::kPerChannelGroup)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, ": expected a positive integer, got ", *v));
    }
    if (flag == "num_calib") o.num_calib = static_cast<int>(*v);
    if (flag == "max_seq_len") o.max_seq_len = static_cast<int>(*v);
    if (flag == "group_size") o.group_size = static_cast<int>(*v);
    if (flag == "seed") o.seed = static_cast<uint64_t>(*v);
    if (flag == "gpus") o.gpus = static_cast<int>(*v);
  }
  return absl::OkStatus();
}

// Applies the flags of an --options_json object.
absl::Status ApplyJson(const std::string& text, CliConfig& c) {
  const nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return absl::InvalidArgumentError("--options_json: not a JSON object");
  }
  for (const auto& [name, value] : doc.items()) {
    const auto it = Flags().find(name);
    if (it == Flags().end() || name == "options_json" || name == "help") {
      return absl::InvalidArgumentError(
          absl::StrCat("--options_json: unknown key \"", name.substr(0, 64), "\""));
    }
    std::string text_value;
    if (it->second.kind == Kind::kSwitch) {
      if (!value.is_boolean()) {
        return absl::InvalidArgumentError(
            absl::StrCat("--options_json: \"", name, "\" must be true or false"));
      }
      if (!value.get<bool>()) continue;
    } else if (value.is_string()) {
      text_value = value.get<std::string>();
    } else if (value.is_number_integer()) {
      text_value = value.dump();
    } else if (value.is_boolean() || value.is_number_float()) {
      // --zero_point true|false and --max_ppl_increase PERCENT as JSON's own types.
      text_value = value.dump();
    } else if (name == "allowed_roots" && value.is_array()) {
      for (const nlohmann::json& root : value) {
        if (!root.is_string()) {
          return absl::InvalidArgumentError("--options_json: allowed_roots must be strings");
        }
      }
      c.allowed_roots = value.get<std::vector<std::string>>();
      continue;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("--options_json: \"", name, "\" must be a string or an integer"));
    }
    if (absl::Status s = Apply(name, text_value, c); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<CliConfig> ParseFlags(const std::vector<std::string>& args, const EnvLookup& env,
                                     const FileReader& read_file) {
  CliConfig c;
  c.options.model_dir = env("AWQ_MODEL_DIR").value_or(kDefaultModelDir);
  c.options.output_dir = env("AWQ_OUTPUT_DIR").value_or(kDefaultOutputDir);
  c.options.calib_jsonl = env("AWQ_CALIB_JSONL").value_or(kDefaultCalibJsonl);
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg.rfind("--", 0) != 0) {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument \"", arg, "\""));
    }
    std::string name = arg.substr(2);
    std::optional<std::string> value;
    if (const size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    const auto it = Flags().find(name);
    if (it == Flags().end()) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name, " (see --help)"));
    }
    if (it->second.kind == Kind::kSwitch) {
      if (value.has_value()) {
        return absl::InvalidArgumentError(absl::StrCat("--", name, " takes no value"));
      }
      value = "";
    } else if (!value.has_value()) {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(absl::StrCat("--", name, ": missing value"));
      }
      value = args[++i];
    }
    if (name == "options_json") {
      if (!read_file) return absl::InvalidArgumentError("--options_json: cannot read files here");
      absl::StatusOr<std::string> text = read_file(*value);
      if (!text.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("--options_json: ", text.status().message()));
      }
      if (absl::Status s = ApplyJson(*text, c); !s.ok()) return s;
      continue;
    }
    if (absl::Status s = Apply(name, *value, c); !s.ok()) return s;
  }
  // The format's rules, as the server applies them at submit (format_options.h).
  if (absl::Status s = engine::CheckQuantFormat(c.options.quant_format()); !s.ok()) return s;
  if (absl::Status s =
          engine::CheckModulePatterns(c.options.modules_to_not_convert, "--modules_to_not_convert");
      !s.ok()) {
    return s;
  }
  if (c.options.max_perplexity_increase_percent.has_value()) {
    if (absl::Status s = engine::CheckPerplexityThreshold(
            *c.options.max_perplexity_increase_percent, "--max_ppl_increase");
        !s.ok()) {
      return s;
    }
  }
  return c;
}

std::string UsageText() {
  std::string text =
      "usage: quantize-awq [--model_dir DIR] [--output_dir DIR] [--calib_jsonl FILE] [flags]\n"
      "AutoAWQ-compatible 4-bit AWQ quantization of a Hugging Face model: AutoAWQ GEMM or\n"
      "compressed-tensors pack-quantized checkpoints, with a quality report.\n\n";
  for (const auto& [name, spec] : Flags()) {
    absl::StrAppend(&text, "  --", name, spec.kind == Kind::kSwitch ? "" : " V", "\n      ",
                    spec.help, "\n");
  }
  text +=
      "\nsubcommands (each with --help): quantize-awq tokenize (token ids calibration would use),\n"
      "quantize-awq make-calib TEXT_FILE (a calibration file from plain text)\n";
  return text;
}

}  // namespace quantd::quantize_awq
