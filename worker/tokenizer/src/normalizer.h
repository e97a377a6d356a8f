// Normalizers of tokenizer.json: NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace, Strip,
// StripAccents and Sequence of them.
#ifndef QUANTD_TOKENIZER_NORMALIZER_H_
#define QUANTD_TOKENIZER_NORMALIZER_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "json_util.h"

namespace quantd::tokenizer {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  // Normalizes one piece of valid UTF-8 text in place.
  virtual void Normalize(std::string& text) const = 0;
};

// Builds the normalizer a tokenizer.json "normalizer" object describes; `where` names the file.
absl::StatusOr<std::unique_ptr<Normalizer>> NormalizerFromJson(const Json& json,
                                                               std::string_view where);

// The Unicode normal forms, for the loaders that configure them without JSON.
std::unique_ptr<Normalizer> MakeUnicodeNormalizer(std::string_view form);

}  // namespace quantd::tokenizer

#endif  // QUANTD_TOKENIZER_NORMALIZER_H_
