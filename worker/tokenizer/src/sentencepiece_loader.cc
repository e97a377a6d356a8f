// Placeholder: replaced by the SentencePiece reader in the next step.
#include "absl/strings/str_cat.h"
#include "loaders.h"

namespace quantd::tokenizer {

absl::StatusOr<Pipeline> LoadSentencePieceModel(const std::string& dir) {
  return absl::UnimplementedError(absl::StrCat(dir, "/tokenizer.model: not supported yet"));
}

}  // namespace quantd::tokenizer
