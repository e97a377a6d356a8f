// Loads the "slow" byte-level BPE layout: vocab.json + merges.txt (+ tokenizer_config.json and
// added_tokens.json for the added tokens).
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "loaders.h"
#include "path_guard/confined_io.h"

namespace quantd::tokenizer {
namespace {

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ReadMerges(
    const std::string& path) {
  std::unique_ptr<std::istream> in = path_guard::OpenInputStream(path);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat(path, ": cannot open file: ", path_guard::ErrorText(errno)));
  }
  std::vector<std::pair<std::string, std::string>> merges;
  std::string line;
  for (size_t number = 1; std::getline(*in, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || (number == 1 && line.starts_with("#version"))) continue;
    const size_t space = line.find(' ');
    if (space == 0 || space == std::string::npos || space + 1 == line.size() ||
        line.find(' ', space + 1) != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": line ", number, " \"", line, "\" is not two tokens separated by one space"));
    }
    merges.emplace_back(line.substr(0, space), line.substr(space + 1));
  }
  return merges;
}

absl::StatusOr<absl::flat_hash_map<std::string, int32_t>> ReadVocab(const std::string& path) {
  absl::StatusOr<Json> doc = ReadJsonFile(path);
  if (!doc.ok()) return doc.status();
  return BpeModel::VocabFromJson(*doc, path);
}

// added_tokens_decoder of tokenizer_config.json, then added_tokens.json, then the named special
// tokens that are only in the vocabulary.
absl::Status AddTokens(const std::string& dir, const Json& config, const BpeModel& model,
                       AddedVocabulary& added) {
  const std::string config_path = dir + "/tokenizer_config.json";
  const auto decoder = config.is_object() ? config.find("added_tokens_decoder") : config.end();
  if (config.is_object() && decoder != config.end() && !decoder->is_null()) {
    if (!decoder->is_object())
      return JsonError(config_path, "\"added_tokens_decoder\" must be an object");
    for (auto it = decoder->begin(); it != decoder->end(); ++it) {
      int32_t id = -1;
      try {
        id = std::stoi(it.key());
      } catch (const std::exception&) {
        return JsonError(config_path, absl::StrCat("added_tokens_decoder key \"", it.key(),
                                                   "\" is not an integer id"));
      }
      absl::StatusOr<AddedToken> token = AddedTokenFromJson(
          it.value(), id, absl::StrCat(config_path, ": added_tokens_decoder[", it.key(), "]"));
      if (!token.ok()) return token.status();
      added.Add(std::move(*token));
    }
  }
  const std::string added_path = dir + "/added_tokens.json";
  if (std::filesystem::exists(added_path)) {
    absl::StatusOr<Json> doc = ReadJsonFile(added_path);
    if (!doc.ok()) return doc.status();
    if (!doc->is_object()) return JsonError(added_path, "expected a JSON object of token -> id");
    for (auto it = doc->begin(); it != doc->end(); ++it) {
      if (!it.value().is_number_integer()) {
        return JsonError(added_path,
                         absl::StrCat("token \"", it.key(), "\" must map to an integer id"));
      }
      if (added.TokenToId(it.key())) continue;
      AddedToken token;
      token.content = it.key();
      token.id = it.value().get<int32_t>();
      token.normalized = true;
      added.Add(std::move(token));
    }
  }
  for (const char* key : {"bos_token", "eos_token", "unk_token", "pad_token"}) {
    const std::optional<std::string> content = ConfigTokenString(config, key);
    if (!content || added.TokenToId(*content)) continue;
    if (const std::optional<int32_t> id = model.TokenToId(*content)) {
      added.Add({.content = *content, .id = *id, .special = true});
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Pipeline> LoadVocabAndMerges(const std::string& dir) {
  absl::StatusOr<Json> config = ReadTokenizerConfig(dir);
  if (!config.ok()) return config.status();
  const std::string tokenizer_class = config->is_object() && config->contains("tokenizer_class") &&
                                              (*config)["tokenizer_class"].is_string()
                                          ? (*config)["tokenizer_class"].get<std::string>()
                                          : "Qwen2Tokenizer";
  const bool qwen = tokenizer_class.starts_with("Qwen2Tokenizer");
  const bool gpt2 = tokenizer_class.starts_with("GPT2Tokenizer");
  if (!qwen && !gpt2) {
    return absl::InvalidArgumentError(absl::StrCat(
        dir, "/tokenizer_config.json: tokenizer_class \"", tokenizer_class,
        "\" with vocab.json + merges.txt is not supported (Qwen2Tokenizer and GPT2Tokenizer are)"));
  }
  absl::StatusOr<absl::flat_hash_map<std::string, int32_t>> vocab = ReadVocab(dir + "/vocab.json");
  if (!vocab.ok()) return vocab.status();
  const std::string merges_path = dir + "/merges.txt";
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> merges = ReadMerges(merges_path);
  if (!merges.ok()) return merges.status();

  Pipeline p;
  absl::StatusOr<std::unique_ptr<BpeModel>> model =
      BpeModel::Create(std::move(*vocab), *merges, BpeOptions(), merges_path);
  if (!model.ok()) return model.status();
  p.model = std::move(*model);
  if (absl::Status s = AddTokens(dir, *config, *p.model, p.added); !s.ok()) return s;

  if (qwen) {
    p.normalizer = MakeUnicodeNormalizer("NFC");
    absl::StatusOr<std::unique_ptr<PreTokenizer>> pre = MakeSplitThenByteLevel(kQwen2Pattern);
    if (!pre.ok()) return pre.status();
    p.pre_tokenizer = std::move(*pre);
  } else {
    const bool add_prefix_space = ConfigBool(*config, "add_prefix_space", false);
    absl::StatusOr<std::unique_ptr<PreTokenizer>> pre = PreTokenizerFromJson(
        Json{{"type", "ByteLevel"}, {"add_prefix_space", add_prefix_space}, {"use_regex", true}},
        dir);
    if (!pre.ok()) return pre.status();
    p.pre_tokenizer = std::move(*pre);
  }
  p.decoder = MakeByteLevelDecoder();
  p.bos_token = ConfigTokenString(*config, "bos_token");
  p.eos_token = ConfigTokenString(*config, "eos_token");
  return p;
}

}  // namespace quantd::tokenizer
