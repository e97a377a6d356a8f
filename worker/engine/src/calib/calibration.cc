#include "calib/calibration.h"

#include <algorithm>
#include <fstream>
#include <utility>
#include <variant>

#include "absl/strings/str_cat.h"
#include "calib/python_random.h"
#include "calib/python_strip.h"
#include "io/file_util.h"
#include "nlohmann/json.hpp"
#include "path_guard/confined_io.h"

namespace quantd::engine {
namespace {

// A valid row: a text or already tokenized ids.
using Row = std::variant<std::string, std::vector<int32_t>>;

void Log(EngineObserver* observer, LogLevel level, const std::string& message) {
  if (observer != nullptr) observer->OnLog(level, message);
}

// Classifies one line; returns the row when valid, else counts why it is skipped.
std::optional<Row> ParseRow(std::string_view line, int vocab_size, CalibrationCounts& counts) {
  if (PythonStrip(line).empty()) {
    ++counts.skipped_blank;
    return std::nullopt;
  }
  nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    ++counts.skipped_unparsable;
    return std::nullopt;
  }
  if (!j.is_object()) {
    ++counts.skipped_not_object;
    return std::nullopt;
  }
  auto text = j.find("text");
  if (text != j.end() && text->is_string()) {
    std::string t = text->get<std::string>();
    if (!PythonStrip(t).empty()) return Row(std::move(t));
  }
  auto ids = j.find("input_ids");
  if (ids == j.end()) {
    ++counts.skipped_no_text;
    return std::nullopt;
  }
  std::vector<int32_t> values;
  bool ok = ids->is_array();
  if (ok) values.reserve(ids->size());
  for (const nlohmann::json& v : ok ? *ids : nlohmann::json::array()) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 ||
        (vocab_size > 0 && v.get<int64_t>() >= vocab_size) || v.get<int64_t>() > INT32_MAX) {
      ok = false;
      break;
    }
    values.push_back(static_cast<int32_t>(v.get<int64_t>()));
  }
  if (!ok) {
    ++counts.skipped_bad_input_ids;
    return std::nullopt;
  }
  return Row(std::move(values));
}

std::string SkipSummary(const CalibrationCounts& c) {
  return absl::StrCat(c.lines, " lines: ", c.skipped_blank, " blank, ", c.skipped_unparsable,
                      " unparsable, ", c.skipped_not_object, " not an object, ", c.skipped_no_text,
                      " without text, ", c.skipped_bad_input_ids, " with invalid input_ids");
}

}  // namespace

CalibrationOptions CalibrationOptions::From(const QuantizeOptions& o, int vocab_size) {
  CalibrationOptions c;
  c.calib_jsonl = o.calib_jsonl;
  c.num_calib = o.num_calib;
  c.max_seq_len = o.max_seq_len;
  c.apply_chat_template = o.apply_chat_template;
  c.chat_template_fallback = o.chat_template_fallback;
  c.system_prompt = o.system_prompt;
  c.seed = o.seed;
  c.vocab_size = vocab_size;
  c.hold_out = o.hold_out && o.eval_text.empty();
  return c;
}

CalibrationChat LoadCalibrationChat(std::string_view model_dir) {
  CalibrationChat chat;
  absl::StatusOr<std::optional<std::string>> source =
      chat_template::LoadChatTemplateSource(model_dir);
  if (!source.ok()) {
    chat.unavailable_reason =
        absl::StrCat("cannot load the chat template: ", std::string(source.status().message()));
    chat.broken = true;
  } else if (!source->has_value()) {
    chat.unavailable_reason = "the model has no chat template";
  } else {
    absl::StatusOr<chat_template::ChatTemplate> parsed =
        chat_template::ChatTemplate::Parse(**source, model_dir);
    if (parsed.ok()) {
      chat.tmpl.emplace(std::move(*parsed));
    } else {
      chat.unavailable_reason = absl::StrCat("the chat template cannot be parsed: ",
                                             std::string(parsed.status().message()));
      chat.broken = true;
    }
  }
  return chat;
}

std::string RenderCalibrationPrompt(std::string_view user, std::string_view system_prompt,
                                    const chat_template::ChatTemplate* tmpl, std::string_view bos,
                                    std::string_view eos, std::string* fallback_reason) {
  std::vector<chat_template::ChatMessage> messages;
  if (!system_prompt.empty()) messages.push_back({"system", std::string(system_prompt)});
  messages.push_back({"user", std::string(user)});
  if (tmpl != nullptr) {
    absl::StatusOr<std::string> rendered =
        tmpl->Render(messages, /*add_generation_prompt=*/true, bos, eos);
    if (rendered.ok()) return *std::move(rendered);
    if (fallback_reason != nullptr) {
      *fallback_reason =
          absl::StrCat("rendering failed: ", std::string(rendered.status().message()));
    }
  } else if (fallback_reason != nullptr) {
    *fallback_reason = "no chat template";
  }
  return chat_template::RenderChatMlFallback(messages, /*add_generation_prompt=*/true);
}

absl::StatusOr<CalibrationSet> BuildCalibration(const CalibrationOptions& options,
                                                const tokenizer::Tokenizer* tokenizer,
                                                const CalibrationChat* chat,
                                                EngineObserver* observer) {
  if (options.num_calib <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_calib must be positive, found ", options.num_calib));
  }
  if (options.max_seq_len <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_seq_len must be positive, found ", options.max_seq_len));
  }
  std::unique_ptr<std::istream> stream = path_guard::OpenInputStream(options.calib_jsonl);
  if (!stream) {
    return absl::InvalidArgumentError(
        absl::StrCat("calib_jsonl ", options.calib_jsonl, " cannot be read (",
                     path_guard::ErrorText(errno), "); ", kCalibJsonlFormatHint));
  }
  std::istream& in = *stream;
  CalibrationSet set;
  CalibrationCounts& counts = set.counts;
  std::vector<Row> sample;
  std::vector<Row> held_out;
  const size_t held_out_limit =
      options.hold_out
          ? static_cast<size_t>((options.num_calib + kHeldOutStride - 1) / kHeldOutStride)
          : 0;
  PythonRandom rng(options.seed);
  const size_t limit = static_cast<size_t>(options.num_calib);
  std::string line;
  int64_t sampled_rows = 0;  // valid rows offered to the reservoir
  while (std::getline(in, line)) {
    ++counts.lines;
    std::optional<Row> row = ParseRow(line, options.vocab_size, counts);
    if (!row) continue;
    const int64_t valid = counts.valid_rows++;
    if (valid % kHeldOutStride == kHeldOutStride - 1 && held_out.size() < held_out_limit) {
      held_out.push_back(std::move(*row));
      continue;
    }
    const int64_t i = sampled_rows++;
    if (sample.size() < limit) {
      sample.push_back(std::move(*row));
    } else {
      const int64_t j = rng.RandInt(0, i);
      if (j < options.num_calib) sample[static_cast<size_t>(j)] = std::move(*row);
    }
  }
  if (in.bad()) {
    return absl::InvalidArgumentError(absl::StrCat("calib_jsonl ", options.calib_jsonl,
                                                   ": read error after ", counts.lines, " lines"));
  }
  if (options.hold_out && held_out.empty() && sample.size() >= 2) {
    held_out.push_back(std::move(sample.back()));
    sample.pop_back();
  }
  counts.sampled = static_cast<int64_t>(sample.size());
  counts.held_out_rows = static_cast<int64_t>(held_out.size());
  if (sample.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("calib_jsonl ", options.calib_jsonl,
                                                   " holds no usable row (", SkipSummary(counts),
                                                   "); ", kCalibJsonlFormatHint));
  }

  const bool wrap = options.apply_chat_template;
  if (wrap && chat != nullptr && chat->broken && !options.chat_template_fallback) {
    return absl::InvalidArgumentError(absl::StrCat(
        chat->unavailable_reason,
        " (apply_chat_template is on; fix the template, turn apply_chat_template off, or opt in "
        "to wrapping the texts as ChatML with chat_template_fallback / "
        "quantize-awq --chat_template_fallback)"));
  }
  const chat_template::ChatTemplate* tmpl = chat != nullptr && chat->tmpl ? &*chat->tmpl : nullptr;
  const std::string bos = tokenizer != nullptr ? tokenizer->bos_token().value_or("") : "";
  const std::string eos = tokenizer != nullptr ? tokenizer->eos_token().value_or("") : "";
  std::string first_fallback_reason =
      tmpl == nullptr ? (chat != nullptr ? chat->unavailable_reason : "no chat template given")
                      : "";
  // One row's tokens as AutoAWQ encodes it (chat template, strip, encode); `fallbacks` counts the
  // rows wrapped in the ChatML fallback.
  auto encode = [&](const Row& row, int64_t* fallbacks) -> absl::StatusOr<std::vector<int32_t>> {
    if (const auto* tokens = std::get_if<std::vector<int32_t>>(&row)) return *tokens;
    if (tokenizer == nullptr) {
      return absl::FailedPreconditionError(absl::StrCat(
          "calib_jsonl ", options.calib_jsonl,
          " holds text rows but the model has no tokenizer; use {\"input_ids\": [...]} rows"));
    }
    std::string user(PythonStrip(std::get<std::string>(row)));
    std::string prompt = user;
    if (wrap) {
      std::string reason;
      prompt = RenderCalibrationPrompt(user, options.system_prompt, tmpl, bos, eos, &reason);
      if (!reason.empty() && (*fallbacks)++ == 0 && tmpl != nullptr) {
        first_fallback_reason = std::move(reason);
      }
    }
    return tokenizer->Encode(PythonStrip(prompt), /*add_special_tokens=*/true);
  };
  std::vector<int32_t> all;
  for (const Row& row : sample) {
    absl::StatusOr<std::vector<int32_t>> encoded = encode(row, &counts.chat_fallbacks);
    if (!encoded.ok()) return encoded.status();
    std::vector<int32_t> ids = std::move(*encoded);
    if (static_cast<int64_t>(ids.size()) > options.max_seq_len) {
      ++counts.texts_over_length;
      continue;
    }
    if (ids.empty()) {
      ++counts.texts_empty;
      continue;
    }
    ++counts.texts_used;
    all.insert(all.end(), ids.begin(), ids.end());
  }
  if (counts.chat_fallbacks > 0) {
    Log(observer, LogLevel::kWarning,
        absl::StrCat("calibration: ", counts.chat_fallbacks, " of ", counts.sampled,
                     " sampled rows use the ChatML fallback (<|im_start|>...) because ",
                     first_fallback_reason));
  }
  int64_t held_out_fallbacks = 0;  // counted apart: they say nothing about the calibration
  for (const Row& row : held_out) {
    absl::StatusOr<std::vector<int32_t>> encoded = encode(row, &held_out_fallbacks);
    if (!encoded.ok()) return encoded.status();
    // A held-out row longer than a block is scored on its first block's worth of tokens (the
    // windows are block-sized anyway): dropping it, as calibration drops such rows, could leave a
    // small file with nothing to score.
    const size_t keep = std::min(encoded->size(), static_cast<size_t>(options.max_seq_len));
    set.held_out_ids.insert(set.held_out_ids.end(), encoded->begin(), encoded->begin() + keep);
  }
  counts.held_out_tokens = static_cast<int64_t>(set.held_out_ids.size());
  counts.tokens = static_cast<int64_t>(all.size());
  counts.blocks = counts.tokens / options.max_seq_len;
  counts.tokens_dropped = counts.tokens - counts.blocks * options.max_seq_len;
  if (counts.blocks == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "calib_jsonl ", options.calib_jsonl, ": ", counts.texts_used, " usable texts give ",
        counts.tokens, " tokens, fewer than one block of max_seq_len ", options.max_seq_len, " (",
        counts.sampled, " sampled, ", counts.texts_over_length, " longer than max_seq_len, ",
        counts.texts_empty, " empty); lower --max_seq_len or add calibration texts"));
  }
  all.resize(static_cast<size_t>(counts.blocks * options.max_seq_len));
  set.seq_len = options.max_seq_len;
  set.ids = std::move(all);
  Log(observer, LogLevel::kInfo,
      absl::StrCat("calibration: ", counts.texts_used, " texts (", counts.sampled, " sampled of ",
                   counts.valid_rows, " valid rows, ", counts.texts_over_length,
                   " over max_seq_len), ", counts.blocks, " blocks of ", set.seq_len, " tokens, ",
                   counts.tokens_dropped, " tokens dropped",
                   options.hold_out ? absl::StrCat("; ", counts.held_out_rows,
                                                   " rows held out for the quality report (",
                                                   counts.held_out_tokens, " tokens)")
                                    : ""));
  return set;
}

absl::Status WriteCalibrationDump(const std::string& path, const CalibrationSet& set) {
  std::string out = absl::StrCat("{\"seq_len\": ", set.seq_len, ", \"blocks\": [");
  for (int64_t b = 0; b < set.num_blocks(); ++b) {
    out += b == 0 ? "[" : ", [";
    absl::Span<const int32_t> block = set.block(b);
    for (size_t i = 0; i < block.size(); ++i) absl::StrAppend(&out, i == 0 ? "" : ", ", block[i]);
    out += "]";
  }
  out += "]}\n";
  return WriteFileAtomically(path, out);
}

}  // namespace quantd::engine
