// Placeholder until the tokenizer lands (issue 3).
#include "quantd/tokenizer/tokenizer.h"

namespace quantd::tokenizer {

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromModelDir(std::string_view model_dir) {
  return absl::UnimplementedError("tokenizer not implemented yet (issue 3)");
}

}  // namespace quantd::tokenizer
