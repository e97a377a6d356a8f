// Loads tokenizer.json, the Hugging Face tokenizers serialization.
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "loaders.h"

namespace quantd::tokenizer {

absl::StatusOr<Json> ReadTokenizerConfig(const std::string& dir) {
  const std::string path = dir + "/tokenizer_config.json";
  if (!std::filesystem::exists(path)) return Json();
  absl::StatusOr<Json> config = ReadJsonFile(path);
  if (!config.ok()) return config.status();
  if (!config->is_object()) return JsonError(path, "expected a JSON object");
  return config;
}

absl::StatusOr<Pipeline> LoadTokenizerJson(const std::string& dir) {
  const std::string path = dir + "/tokenizer.json";
  absl::StatusOr<Json> doc = ReadJsonFile(path);
  if (!doc.ok()) return doc.status();
  if (!doc->is_object()) return JsonError(path, "expected a JSON object");
  Pipeline p;

  const auto model = doc->find("model");
  if (model == doc->end() || !model->is_object())
    return JsonError(path, "missing \"model\" object");
  // Files written by old versions omit "type" for BPE.
  const std::string model_type = model->contains("type") && (*model)["type"].is_string()
                                     ? (*model)["type"].get<std::string>()
                                     : "BPE";
  if (model_type != "BPE") {
    return JsonError(path, absl::StrCat("model type \"", model_type,
                                        "\" is not supported (only BPE models are)"));
  }
  absl::StatusOr<std::unique_ptr<BpeModel>> bpe = BpeModel::FromJson(*model, path);
  if (!bpe.ok()) return bpe.status();
  p.model = std::move(*bpe);

  const auto added = doc->find("added_tokens");
  if (added != doc->end() && !added->is_null()) {
    if (!added->is_array()) return JsonError(path, "\"added_tokens\" must be an array");
    for (size_t i = 0; i < added->size(); ++i) {
      absl::StatusOr<AddedToken> token = AddedTokenFromJson(
          (*added)[i], std::nullopt, absl::StrCat(path, ": added_tokens[", i, "]"));
      if (!token.ok()) return token.status();
      // As HF does, whatever the file says: a token of the model's vocabulary keeps its id there,
      // a new one gets the next id after the vocabulary and the tokens added before it.
      if (auto id = p.added.TokenToId(token->content)) {
        token->id = *id;
      } else if (auto model_id = p.model->TokenToId(token->content)) {
        token->id = *model_id;
      } else {
        const int32_t max_added = p.added.MaxId();
        const int32_t entries = p.model->entries();
        token->id =
            max_added >= 0 && (max_added >= entries || entries == 0) ? max_added + 1 : entries;
      }
      p.added.Add(std::move(*token));
    }
  }
  const auto component = [&](const char* key) -> const Json* {
    const auto it = doc->find(key);
    return it == doc->end() || it->is_null() ? nullptr : &*it;
  };
  if (const Json* j = component("normalizer")) {
    absl::StatusOr<std::unique_ptr<Normalizer>> n = NormalizerFromJson(*j, path);
    if (!n.ok()) return n.status();
    p.normalizer = std::move(*n);
  }
  if (const Json* j = component("pre_tokenizer")) {
    absl::StatusOr<std::unique_ptr<PreTokenizer>> t = PreTokenizerFromJson(*j, path);
    if (!t.ok()) return t.status();
    p.pre_tokenizer = std::move(*t);
  }
  if (const Json* j = component("post_processor")) {
    absl::StatusOr<PostProcessor> pp = PostProcessorFromJson(*j, path);
    if (!pp.ok()) return pp.status();
    p.post_processor = std::move(*pp);
  }
  if (const Json* j = component("decoder")) {
    absl::StatusOr<std::unique_ptr<Decoder>> d = DecoderFromJson(*j, path);
    if (!d.ok()) return d.status();
    p.decoder = std::move(*d);
  }
  absl::StatusOr<Json> config = ReadTokenizerConfig(dir);
  if (!config.ok()) return config.status();
  p.bos_token = ConfigTokenString(*config, "bos_token");
  p.eos_token = ConfigTokenString(*config, "eos_token");
  return p;
}

}  // namespace quantd::tokenizer
