#include "added_vocabulary.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "unicode_class.h"
#include "utf8.h"

namespace quantd::tokenizer {
namespace {

absl::string_view AbslView(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// The code point that ends text[0, end).
char32_t LastCodePoint(std::string_view text, size_t end) {
  size_t start = end - 1;
  while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
  return NextCodePoint(text, start);
}

bool IsWordChar(char32_t c) { return c == '_' || IsAlphanumeric(c); }

}  // namespace

absl::StatusOr<AddedToken> AddedTokenFromJson(const Json& json, std::optional<int32_t> id,
                                              std::string_view where) {
  AddedToken token;
  absl::StatusOr<std::string> content = GetString(json, "content", where);
  if (!content.ok()) return content.status();
  token.content = *content;
  if (token.content.empty()) return JsonError(where, "added token with empty \"content\"");
  if (id) {
    token.id = *id;
  } else {
    absl::StatusOr<int64_t> json_id = GetInt(json, "id", where);
    if (!json_id.ok()) return json_id.status();
    token.id = static_cast<int32_t>(*json_id);
  }
  if (token.id < 0) return JsonError(where, absl::StrCat("added token has negative id ", token.id));
  absl::StatusOr<bool> special = GetBool(json, "special", where, false);
  if (!special.ok()) return special.status();
  token.special = *special;
  struct Flag {
    const char* key;
    bool* field;
    bool fallback;
  };
  for (const Flag& f : {Flag{"single_word", &token.single_word, false},
                        Flag{"lstrip", &token.lstrip, false}, Flag{"rstrip", &token.rstrip, false},
                        Flag{"normalized", &token.normalized, !token.special}}) {
    absl::StatusOr<bool> value = GetBool(json, f.key, where, f.fallback);
    if (!value.ok()) return value.status();
    *f.field = *value;
  }
  return token;
}

void AddedVocabulary::Add(AddedToken token) {
  const auto existing = by_content_.find(token.content);
  size_t index;
  if (existing != by_content_.end()) {
    index = existing->second;
    tokens_[index] = std::move(token);
  } else {
    index = tokens_.size();
    tokens_.push_back(std::move(token));
    by_content_[tokens_[index].content] = index;
    auto& bucket = by_first_byte_[static_cast<unsigned char>(tokens_[index].content[0])];
    bucket.push_back(index);
    std::stable_sort(bucket.begin(), bucket.end(), [&](size_t a, size_t b) {
      return tokens_[a].content.size() > tokens_[b].content.size();
    });
  }
  by_id_[tokens_[index].id] = index;
  has_normalized_ =
      std::any_of(tokens_.begin(), tokens_.end(), [](const AddedToken& t) { return t.normalized; });
}

void AddedVocabulary::Split(std::string_view text, bool normalized, std::vector<Piece>& out) const {
  out.clear();
  size_t text_start = 0;   // start of the text not yet emitted
  size_t matched_end = 0;  // HF's start_offset: where the previous match stopped
  for (size_t pos = 0; pos < text.size();) {
    const auto& bucket = by_first_byte_[static_cast<unsigned char>(text[pos])];
    const AddedToken* found = nullptr;
    for (size_t index : bucket) {
      const AddedToken& t = tokens_[index];
      if (t.normalized == normalized && text.substr(pos).starts_with(t.content)) {
        found = &t;
        break;
      }
    }
    if (found == nullptr) {
      ++pos;
      continue;
    }
    size_t start = pos, stop = pos + found->content.size();
    pos = stop;  // matches never overlap, even those discarded below
    if (found->single_word) {
      const bool space_before = start == 0 || !IsWordChar(LastCodePoint(text, start));
      size_t next = stop;
      const bool space_after = stop == text.size() || !IsWordChar(NextCodePoint(text, next));
      if (!space_before || !space_after) continue;
    }
    if (found->lstrip) {
      size_t s = start;
      while (s > 0 && IsWhiteSpace(LastCodePoint(text, s))) {
        --s;
        while (s > 0 && (static_cast<unsigned char>(text[s]) & 0xC0) == 0x80) --s;
      }
      start = std::max(s, matched_end);
    }
    if (found->rstrip) {
      while (stop < text.size()) {
        size_t next = stop;
        if (!IsWhiteSpace(NextCodePoint(text, next))) break;
        stop = next;
      }
    }
    matched_end = stop;
    if (start > text_start) out.push_back({text_start, start, -1});
    out.push_back({start, stop, found->id});
    text_start = std::max(text_start, stop);
  }
  if (text_start < text.size() || out.empty()) out.push_back({text_start, text.size(), -1});
}

std::optional<int32_t> AddedVocabulary::TokenToId(std::string_view content) const {
  const auto it = by_content_.find(AbslView(content));
  if (it == by_content_.end()) return std::nullopt;
  return tokens_[it->second].id;
}

const AddedToken* AddedVocabulary::FindById(int32_t id) const {
  const auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

int32_t AddedVocabulary::MaxId() const {
  int32_t max_id = -1;
  for (const AddedToken& t : tokens_) max_id = std::max(max_id, t.id);
  return max_id;
}

}  // namespace quantd::tokenizer
