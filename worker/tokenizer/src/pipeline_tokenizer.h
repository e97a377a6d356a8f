// The tokenizer every layout loads into: added tokens, normalizer, pre-tokenizer, BPE model,
// post-processor and decoder, run as HF tokenizers runs them.
#ifndef QUANTD_TOKENIZER_PIPELINE_TOKENIZER_H_
#define QUANTD_TOKENIZER_PIPELINE_TOKENIZER_H_

#include <memory>
#include <optional>
#include <string>

#include "added_vocabulary.h"
#include "bpe_model.h"
#include "decoder.h"
#include "normalizer.h"
#include "post_processor.h"
#include "pre_tokenizer.h"
#include "quantd/tokenizer/tokenizer.h"

namespace quantd::tokenizer {

struct Pipeline {
  AddedVocabulary added;
  std::unique_ptr<Normalizer> normalizer;       // may be null
  std::unique_ptr<PreTokenizer> pre_tokenizer;  // may be null
  std::unique_ptr<BpeModel> model;
  PostProcessor post_processor;
  std::unique_ptr<Decoder> decoder;  // may be null: tokens joined with spaces
  std::optional<std::string> bos_token;
  std::optional<std::string> eos_token;
};

class PipelineTokenizer : public Tokenizer {
 public:
  explicit PipelineTokenizer(Pipeline pipeline);

  absl::StatusOr<std::vector<int32_t>> Encode(std::string_view text,
                                              bool add_special_tokens) const override;
  absl::StatusOr<std::string> Decode(absl::Span<const int32_t> ids,
                                     bool skip_special_tokens) const override;
  std::optional<std::string> bos_token() const override { return p_.bos_token; }
  std::optional<std::string> eos_token() const override { return p_.eos_token; }
  std::optional<int32_t> TokenToId(std::string_view token) const override;
  int32_t vocab_size() const override;

 private:
  // Normalizes, pre-tokenizes and encodes one stretch of text between added tokens.
  void EncodeText(std::string_view text, bool at_input_start, std::vector<int32_t>& ids) const;
  void EncodeNormalized(PreTokenized& pt, std::vector<int32_t>& ids) const;

  Pipeline p_;
};

// Special-token strings of tokenizer_config.json ("bos_token": "<s>" or {"content": "<s>"}).
std::optional<std::string> ConfigTokenString(const Json& config, const char* key);

}  // namespace quantd::tokenizer

#endif  // QUANTD_TOKENIZER_PIPELINE_TOKENIZER_H_
