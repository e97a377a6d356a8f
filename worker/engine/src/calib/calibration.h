// Calibration data as the seed script + AutoAWQ build it (spec/awq.md §1, §10): read a JSON-lines
// file, reservoir-sample `num_calib` rows with CPython's random.Random(seed) (so the sample equals
// the seed script's), wrap each text in the chat template, strip and encode it, skip texts longer
// than max_seq_len, concatenate everything and cut it into blocks of max_seq_len tokens.
//
// Rows: {"text": "..."} or already tokenized {"input_ids": [ints]} (used as they are: no chat
// template, no strip, no encoding — AutoAWQ's path for token lists). Blank, unparsable,
// non-object, text-less and invalid-input_ids rows are skipped and counted.
//
// Sampling (Algorithm R, as the seed script's reservoir): row i (0-based, counting valid rows only)
// is appended while fewer than num_calib rows are held; after that j = rng.randint(0, i) and the
// row replaces sample[j] when j < num_calib. A file with no more valid rows than num_calib is
// therefore used whole, in file order.
#ifndef QUANTD_ENGINE_CALIB_CALIBRATION_H_
#define QUANTD_ENGINE_CALIB_CALIBRATION_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "quantd/chat_template/chat_template.h"
#include "quantd/engine/quantize.h"
#include "quantd/tokenizer/tokenizer.h"

namespace quantd::engine {

struct CalibrationOptions {
  std::string calib_jsonl;
  int num_calib = 8192;
  int max_seq_len = 2048;
  bool apply_chat_template = true;
  bool chat_template_fallback = false;  // ChatML instead of failing on a broken template.
  std::string system_prompt;            // "" = no system message.
  uint64_t seed = 42;
  int vocab_size = 0;  // > 0: input_ids rows must hold ids below it (the model's vocab_size).

  static CalibrationOptions From(const QuantizeOptions& options, int vocab_size);
};

// What happened to the rows, for logs and quant_report.json.
struct CalibrationCounts {
  int64_t lines = 0;                  // Lines in the file.
  int64_t skipped_blank = 0;          // Empty or whitespace-only lines.
  int64_t skipped_unparsable = 0;     // Not JSON.
  int64_t skipped_not_object = 0;     // JSON but not an object.
  int64_t skipped_no_text = 0;        // No "text" string with non-space content and no "input_ids".
  int64_t skipped_bad_input_ids = 0;  // "input_ids" not a list of ids in [0, vocab_size).
  int64_t valid_rows = 0;
  int64_t sampled = 0;            // Rows kept by the reservoir.
  int64_t chat_fallbacks = 0;     // Texts wrapped in the ChatML fallback instead of the template.
  int64_t texts_empty = 0;        // Encoded to zero tokens.
  int64_t texts_over_length = 0;  // More than max_seq_len tokens: skipped.
  int64_t texts_used = 0;
  int64_t tokens = 0;          // Concatenated tokens before the cut.
  int64_t tokens_dropped = 0;  // The remainder after the last full block.
  int64_t blocks = 0;
};

struct CalibrationSet {
  int seq_len = 0;
  std::vector<int32_t> ids;  // blocks × seq_len, row-major.
  CalibrationCounts counts;

  int64_t num_blocks() const {
    return seq_len > 0 ? static_cast<int64_t>(ids.size()) / seq_len : 0;
  }
  absl::Span<const int32_t> block(int64_t i) const {
    return absl::Span<const int32_t>(ids.data() + i * seq_len, static_cast<size_t>(seq_len));
  }
};

// A model's chat template for calibration, or why there is none usable.
struct CalibrationChat {
  std::optional<chat_template::ChatTemplate> tmpl;
  std::string unavailable_reason;  // Set when tmpl is empty.
  bool broken = false;             // The model has a template, but it cannot be loaded or parsed.
};
CalibrationChat LoadCalibrationChat(std::string_view model_dir);

// The chat prompt of one calibration text, as the seed script builds it: messages [system (left out
// when `system_prompt` is empty), user] rendered with add_generation_prompt. Falls back to the
// ChatML format when `tmpl` is null or rendering fails, and then sets *fallback_reason (if given).
std::string RenderCalibrationPrompt(std::string_view user, std::string_view system_prompt,
                                    const chat_template::ChatTemplate* tmpl, std::string_view bos,
                                    std::string_view eos, std::string* fallback_reason);

// Builds the calibration blocks. `tokenizer` may be null when every row is pre-tokenized (a model
// directory without tokenizer files, like the parity fixture); a text row then is an error. `chat`
// is used only with options.apply_chat_template (nullptr there means "no template": the ChatML
// fallback; a broken template is InvalidArgument unless options.chat_template_fallback). Warnings
// (fallbacks) and a summary go to `observer` (may be null). Errors:
// InvalidArgument naming the file for a missing/unreadable file, no usable rows, or fewer tokens
// than one block (with the counts and a hint).
absl::StatusOr<CalibrationSet> BuildCalibration(const CalibrationOptions& options,
                                                const tokenizer::Tokenizer* tokenizer,
                                                const CalibrationChat* chat,
                                                EngineObserver* observer);

// --dump_calib: {"seq_len": L, "blocks": [[ids...], ...]}, written via temp + rename.
absl::Status WriteCalibrationDump(const std::string& path, const CalibrationSet& set);

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_CALIB_CALIBRATION_H_
