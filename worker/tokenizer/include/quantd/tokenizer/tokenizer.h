// Tokenizer: turns text into the token ids Hugging Face's tokenizer gives for the same model, and
// back. Loads whatever a model directory holds, in this order:
//  - tokenizer.json (HF tokenizers format). Model: BPE (byte-level or SentencePiece-style with
//    byte_fallback, unk/fuse_unk, ignore_merges, continuing_subword_prefix / end_of_word_suffix;
//    dropout must be null). Normalizers: NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace
//    (string or regex), Strip, StripAccents, Sequence. Pre-tokenizers: Split (string or regex,
//    every behavior, invert), ByteLevel (add_prefix_space, use_regex), Metaspace (prepend_scheme
//    always/first/never or the older add_prefix_space, split), Digits, Whitespace,
//    WhitespaceSplit, Punctuation, BertPreTokenizer, Sequence. Post-processors (single sequence):
//    TemplateProcessing, RobertaProcessing, BertProcessing, ByteLevel, Sequence. Decoders:
//    ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip, BPEDecoder, Sequence. Added tokens
//    are matched before the model (non-normalized ones on the raw text, normalized ones on the
//    normalized text, leftmost-longest) honouring lstrip, rstrip, single_word; their ids follow
//    HF's rule (the model's id when the content is in the vocabulary). Anything else (WordPiece,
//    Unigram, Precompiled normalizers, ...) is a load error naming the file and the type.
//  - vocab.json + merges.txt (+ added tokens from tokenizer_config.json's added_tokens_decoder and
//    added_tokens.json): byte-level BPE as transformers' Qwen2Tokenizer (NFC + Qwen's split
//    regex) or GPT2Tokenizer builds it, chosen by tokenizer_config.json's tokenizer_class
//    (Qwen2Tokenizer when absent).
//  - tokenizer.model (SentencePiece, BPE type, identity normalizer): converted as transformers'
//    LlamaConverter does; tokenizer_config.json's legacy (default true), add_prefix_space,
//    add_bos_token (default true) and add_eos_token (default false) are honoured.
// Split regexes run on PCRE2 (UTF + UCP, JIT) with \s, \S and \w given the Unicode meanings of the
// reference's engine; normal forms come from utf8proc. Unicode data versions may differ from the
// reference's for characters assigned after Unicode 14 (PCRE2 10.42).
// Thread-safe: Encode and Decode may be called concurrently.
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
  // added, as HF's `encode(text, add_special_tokens=True)` does. Invalid UTF-8 is first replaced as
  // Python's bytes.decode("utf-8", errors="replace") does (each maximal ill-formed subsequence
  // becomes U+FFFD), which is the text HF's tokenizer sees for such bytes.
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
