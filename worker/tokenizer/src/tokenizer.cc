#include "quantd/tokenizer/tokenizer.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "loaders.h"

namespace quantd::tokenizer {

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromModelDir(std::string_view model_dir) {
  const std::string dir(model_dir);
  const auto has = [&](const char* name) { return std::filesystem::exists(dir + "/" + name); };
  absl::StatusOr<Pipeline> pipeline;
  if (has("tokenizer.json")) {
    pipeline = LoadTokenizerJson(dir);
  } else if (has("vocab.json") && has("merges.txt")) {
    pipeline = LoadVocabAndMerges(dir);
  } else if (has("tokenizer.model")) {
    pipeline = LoadSentencePieceModel(dir);
  } else {
    return absl::NotFoundError(
        absl::StrCat(dir,
                     ": no tokenizer found (expected tokenizer.json, vocab.json + merges.txt, or "
                     "tokenizer.model)"));
  }
  if (!pipeline.ok()) return pipeline.status();
  return std::make_unique<PipelineTokenizer>(std::move(*pipeline));
}

}  // namespace quantd::tokenizer
