#include "tokenize_command.h"

#include <cstdlib>
#include <optional>

#include "nlohmann/json.hpp"
#include "quantd/engine/calibration_preview.h"
#include "quantd/engine/quantize.h"

namespace quantd::quantize_awq {
namespace {

constexpr char kUsage[] =
    "usage: quantize-awq tokenize --model_dir DIR [--chat] [--system_prompt S] [--render]\n"
    "  Reads JSON lines {\"text\": ...} on stdin; writes one line per input line: the JSON array "
    "of\n"
    "  token ids calibration uses for the text (chat-wrapped with --chat, stripped, encoded with "
    "the\n"
    "  tokenizer's special tokens), or with --render the rendered text as one JSON string.\n"
    "  --model_dir defaults to AWQ_MODEL_DIR. --chat wraps each text as [system, user] messages\n"
    "  with add_generation_prompt; --system_prompt defaults to the seed's, '' means none.\n";

struct TokenizeFlags {
  std::string model_dir;
  bool chat = false;
  bool render = false;
  std::string system_prompt = engine::kSeedSystemPrompt;
};

std::optional<TokenizeFlags> Parse(const std::vector<std::string>& args, std::FILE* err) {
  TokenizeFlags f;
  if (const char* env = std::getenv("AWQ_MODEL_DIR"); env != nullptr) f.model_dir = env;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](std::string_view name) -> std::optional<std::string> {
      if (a.rfind(std::string(name) + "=", 0) == 0) return a.substr(name.size() + 1);
      if (a == name && i + 1 < args.size()) return args[++i];
      return std::nullopt;
    };
    if (a == "--chat") {
      f.chat = true;
    } else if (a == "--render") {
      f.render = true;
    } else if (auto v = value("--model_dir")) {
      f.model_dir = *v;
    } else if (auto v = value("--system_prompt")) {
      f.system_prompt = *v;
    } else {
      std::fprintf(err, "quantize-awq tokenize: unknown or incomplete argument '%s'\n\n%s",
                   a.c_str(), kUsage);
      return std::nullopt;
    }
  }
  if (f.model_dir.empty()) {
    std::fprintf(err, "quantize-awq tokenize: --model_dir is required\n\n%s", kUsage);
    return std::nullopt;
  }
  return f;
}

}  // namespace

int RunTokenize(const std::vector<std::string>& args, std::istream& in, std::FILE* out,
                std::FILE* err) {
  if (!args.empty() && (args[0] == "--help" || args[0] == "-h")) {
    std::fputs(kUsage, out);
    return 0;
  }
  std::optional<TokenizeFlags> flags = Parse(args, err);
  if (!flags) return 2;
  auto preview =
      engine::CalibrationPreview::Open(flags->model_dir, flags->chat, flags->system_prompt);
  if (!preview.ok()) {
    std::fprintf(err, "quantize-awq tokenize: %s\n",
                 std::string(preview.status().message()).c_str());
    return 1;
  }
  int bad_rows = 0;
  std::string line;
  for (int64_t line_no = 1; std::getline(in, line); ++line_no) {
    nlohmann::json row = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    const nlohmann::json* text = nullptr;
    if (row.is_object() && row.contains("text") && row["text"].is_string()) text = &row["text"];
    std::string result = "null";
    if (text == nullptr) {
      std::fprintf(err,
                   "quantize-awq tokenize: stdin line %lld: expected a JSON object with a "
                   "string \"text\"\n",
                   static_cast<long long>(line_no));
      ++bad_rows;
    } else if (flags->render) {
      result = nlohmann::json((*preview)->Render(text->get<std::string>()))
                   .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    } else {
      absl::StatusOr<std::vector<int32_t>> ids = (*preview)->Encode(text->get<std::string>());
      if (!ids.ok()) {
        std::fprintf(err, "quantize-awq tokenize: stdin line %lld: %s\n",
                     static_cast<long long>(line_no), std::string(ids.status().message()).c_str());
        ++bad_rows;
      } else {
        result = nlohmann::json(*ids).dump();
      }
    }
    std::fprintf(out, "%s\n", result.c_str());
  }
  if (std::string reason = (*preview)->fallback_reason(); flags->chat && !reason.empty()) {
    std::fprintf(err,
                 "quantize-awq tokenize: used the ChatML fallback (<|im_start|>...) because %s\n",
                 reason.c_str());
  }
  return bad_rows == 0 ? 0 : 1;
}

}  // namespace quantd::quantize_awq
