// Loaders of the three layouts a model directory may hold.
#ifndef QUANTD_TOKENIZER_LOADERS_H_
#define QUANTD_TOKENIZER_LOADERS_H_

#include <string>

#include "absl/status/statusor.h"
#include "pipeline_tokenizer.h"

namespace quantd::tokenizer {

// tokenizer.json (+ bos/eos from tokenizer_config.json beside it, when present).
absl::StatusOr<Pipeline> LoadTokenizerJson(const std::string& dir);

// vocab.json + merges.txt (+ tokenizer_config.json, added_tokens.json): byte-level BPE as
// transformers' Qwen2Tokenizer / GPT2Tokenizer build it.
absl::StatusOr<Pipeline> LoadVocabAndMerges(const std::string& dir);

// SentencePiece tokenizer.model (BPE type), converted as transformers' LlamaConverter does.
absl::StatusOr<Pipeline> LoadSentencePieceModel(const std::string& dir);

// tokenizer_config.json of `dir`, or null when the file is absent.
absl::StatusOr<Json> ReadTokenizerConfig(const std::string& dir);

}  // namespace quantd::tokenizer

#endif  // QUANTD_TOKENIZER_LOADERS_H_
