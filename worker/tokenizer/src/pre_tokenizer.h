// Pre-tokenizers of tokenizer.json: Split, ByteLevel, Metaspace, Digits, Whitespace,
// WhitespaceSplit, Punctuation, BertPreTokenizer and Sequence of them.
#ifndef QUANTD_TOKENIZER_PRE_TOKENIZER_H_
#define QUANTD_TOKENIZER_PRE_TOKENIZER_H_

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "json_util.h"
#include "split.h"

namespace quantd::tokenizer {

// A normalized segment of the input cut into pieces (byte ranges of `text`).
struct PreTokenized {
  std::string text;
  std::vector<std::pair<size_t, size_t>> pieces;
  // The pieces are raw bytes still to be read through the byte-level alphabet (a ByteLevel step
  // that ran last leaves the mapping to the model, which keys its tables by raw bytes).
  bool byte_level = false;
  // This segment starts at offset 0 of the input (Metaspace's prepend_scheme "first").
  bool at_input_start = true;

  // Scratch space reused across calls.
  std::vector<std::pair<size_t, size_t>> next_pieces;
  std::vector<Segment> segments;
  std::string next_text;

  void Reset(bool starts_input) {
    pieces.assign(1, {0, text.size()});
    byte_level = false;
    at_input_start = starts_input;
  }
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  virtual void PreTokenize(PreTokenized& pt) const = 0;
  // Called on the last step of the pipeline: a ByteLevel step may then leave its mapping to the
  // model (PreTokenized::byte_level).
  virtual void DeferByteLevelMapping() {}
};

// Builds the pre-tokenizer a tokenizer.json "pre_tokenizer" object describes.
absl::StatusOr<std::unique_ptr<PreTokenizer>> PreTokenizerFromJson(const Json& json,
                                                                   std::string_view where);

// The Split(regex, Isolated) + ByteLevel pre-tokenizer of Qwen2's tokenizer, for the slow layout.
absl::StatusOr<std::unique_ptr<PreTokenizer>> MakeSplitThenByteLevel(std::string_view pattern);

// GPT-2's pre-tokenization pattern (ByteLevel with use_regex).
inline constexpr std::string_view kGpt2Pattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
// Qwen2's pre-tokenization pattern.
inline constexpr std::string_view kQwen2Pattern =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

}  // namespace quantd::tokenizer

#endif  // QUANTD_TOKENIZER_PRE_TOKENIZER_H_
