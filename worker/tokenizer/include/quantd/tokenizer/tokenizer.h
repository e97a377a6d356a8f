// Tokenizer: turns text into the token ids Hugging Face's tokenizer gives for the same model, and
// back. Loads whatever a model directory holds: tokenizer.json (HF tokenizers format), the "slow"
// vocab.json + merges.txt (+ tokenizer_config.json / added_tokens.json), or a SentencePiece
// tokenizer.model.
#ifndef QUANTD_TOKENIZER_TOKENIZER_H_
#define QUANTD_TOKENIZER_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace quantd::tokenizer {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Loads the tokenizer of a model directory; errors name the file and what is wrong with it.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromModelDir(std::string_view model_dir);

  // Encodes `text`. With add_special_tokens, the post-processor's tokens (e.g. Llama's BOS) are
  // added, as HF's `encode(text, add_special_tokens=True)` does. Invalid UTF-8 is handled as the
  // reference does.
  virtual absl::StatusOr<std::vector<int32_t>> Encode(std::string_view text,
                                                      bool add_special_tokens) const = 0;

  // Decodes ids back to text (special tokens included unless skip_special_tokens).
  virtual absl::StatusOr<std::string> Decode(absl::Span<const int32_t> ids,
                                             bool skip_special_tokens = false) const = 0;

  // Special tokens as configured (tokenizer_config.json / tokenizer.json), if any.
  virtual std::optional<std::string> bos_token() const = 0;
  virtual std::optional<std::string> eos_token() const = 0;

  // Id of a token string (regular or added), if it exists.
  virtual std::optional<int32_t> TokenToId(std::string_view token) const = 0;
  virtual int32_t vocab_size() const = 0;
};

}  // namespace quantd::tokenizer

#endif  // QUANTD_TOKENIZER_TOKENIZER_H_
