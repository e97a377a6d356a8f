#include "pipeline_tokenizer.h"

#include <algorithm>

#include "utf8.h"

namespace quantd::tokenizer {

PipelineTokenizer::PipelineTokenizer(Pipeline pipeline) : p_(std::move(pipeline)) {
  if (p_.pre_tokenizer != nullptr) p_.pre_tokenizer->DeferByteLevelMapping();
}

absl::StatusOr<std::vector<int32_t>> PipelineTokenizer::Encode(std::string_view text,
                                                               bool add_special_tokens) const {
  std::string sanitized;
  if (!IsValidUtf8(text)) {
    sanitized = ReplaceInvalidUtf8(text);
    text = sanitized;
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  thread_local std::vector<AddedVocabulary::Piece> pieces;
  p_.added.Split(text, /*normalized=*/false, pieces);
  for (const AddedVocabulary::Piece& piece : pieces) {
    if (piece.id >= 0) {
      ids.push_back(piece.id);
    } else {
      EncodeText(text.substr(piece.start, piece.end - piece.start), piece.start == 0, ids);
    }
  }
  if (add_special_tokens) p_.post_processor.Apply(ids);
  return ids;
}

void PipelineTokenizer::EncodeText(std::string_view text, bool at_input_start,
                                   std::vector<int32_t>& ids) const {
  if (text.empty()) return;
  thread_local PreTokenized pt;
  pt.text.assign(text.data(), text.size());
  if (p_.normalizer != nullptr) p_.normalizer->Normalize(pt.text);
  if (!p_.added.HasNormalizedTokens()) {
    pt.Reset(at_input_start);
    EncodeNormalized(pt, ids);
    return;
  }
  std::vector<AddedVocabulary::Piece> inner;
  p_.added.Split(pt.text, /*normalized=*/true, inner);
  const std::string normalized = pt.text;
  for (const AddedVocabulary::Piece& piece : inner) {
    if (piece.id >= 0) {
      ids.push_back(piece.id);
      continue;
    }
    pt.text = normalized.substr(piece.start, piece.end - piece.start);
    pt.Reset(at_input_start && piece.start == 0);
    EncodeNormalized(pt, ids);
  }
}

void PipelineTokenizer::EncodeNormalized(PreTokenized& pt, std::vector<int32_t>& ids) const {
  if (pt.text.empty()) return;
  if (p_.pre_tokenizer != nullptr) p_.pre_tokenizer->PreTokenize(pt);
  const std::string_view text(pt.text);
  for (const auto& [begin, end] : pt.pieces) {
    p_.model->EncodeWord(text.substr(begin, end - begin), pt.byte_level, ids);
  }
}

absl::StatusOr<std::string> PipelineTokenizer::Decode(absl::Span<const int32_t> ids,
                                                      bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    if (const AddedToken* added = p_.added.FindById(id)) {
      if (!(skip_special_tokens && added->special)) tokens.push_back(added->content);
      continue;
    }
    const std::string_view token = p_.model->IdToToken(id);
    if (!token.empty()) tokens.emplace_back(token);
  }
  if (p_.decoder != nullptr) p_.decoder->DecodeChain(tokens);
  std::string out;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (i > 0 && p_.decoder == nullptr) out.push_back(' ');
    out += tokens[i];
  }
  return out;
}

std::optional<int32_t> PipelineTokenizer::TokenToId(std::string_view token) const {
  if (auto id = p_.added.TokenToId(token)) return id;
  return p_.model->TokenToId(token);
}

int32_t PipelineTokenizer::vocab_size() const {
  return std::max(p_.model->size(), p_.added.MaxId() + 1);
}

std::optional<std::string> ConfigTokenString(const Json& config, const char* key) {
  if (!config.is_object()) return std::nullopt;
  const auto it = config.find(key);
  if (it == config.end()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) {
    return (*it)["content"].get<std::string>();
  }
  return std::nullopt;
}

}  // namespace quantd::tokenizer
