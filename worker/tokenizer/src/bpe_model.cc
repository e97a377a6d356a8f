#include "bpe_model.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "byte_level.h"
#include "utf8.h"

namespace quantd::tokenizer {
namespace {

absl::string_view AbslView(std::string_view s) { return absl::string_view(s.data(), s.size()); }

constexpr std::string_view kMetaspace = "\xE2\x96\x81";  // U+2581

struct HeapEntry {
  int32_t rank;
  int32_t pos;
  int32_t new_id;
  // std::*_heap build max-heaps: "less" means later (higher rank, then further right).
  bool operator<(const HeapEntry& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
};

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> MergesFromJson(
    const Json& merges, const std::string& at) {
  std::vector<std::pair<std::string, std::string>> out;
  if (merges.is_null()) return out;
  if (!merges.is_array()) return JsonError(at, "\"merges\" must be an array");
  out.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const Json& m = merges[i];
    if (m.is_string()) {  // "a b"
      const std::string& s = m.get_ref<const std::string&>();
      const size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
        return JsonError(at, absl::StrCat("merges[", i, "] \"", s,
                                          "\" must be two tokens separated by one space"));
      }
      out.emplace_back(s.substr(0, space), s.substr(space + 1));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      out.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      return JsonError(at, absl::StrCat("merges[", i, "] must be \"a b\" or [\"a\", \"b\"]"));
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<BpeModel>> BpeModel::Create(
    absl::flat_hash_map<std::string, int32_t> vocab,
    const std::vector<std::pair<std::string, std::string>>& merges, BpeOptions options,
    std::string_view where) {
  const std::string at(where);
  auto model = std::unique_ptr<BpeModel>(new BpeModel());
  int32_t max_id = -1;
  for (const auto& [token, id] : vocab) {
    if (id < 0)
      return JsonError(at, absl::StrCat("vocab entry \"", token, "\" has negative id ", id));
    max_id = std::max(max_id, id);
  }
  model->id_to_token_.resize(static_cast<size_t>(max_id) + 1);
  for (const auto& [token, id] : vocab) model->id_to_token_[id] = token;
  const size_t prefix_len = options.continuing_subword_prefix.size();
  model->merges_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [a, b] = merges[rank];
    const auto ia = vocab.find(a), ib = vocab.find(b);
    if (ia == vocab.end() || ib == vocab.end()) {
      return JsonError(at, absl::StrCat("merge ", rank, " \"", a, " ", b, "\": token \"",
                                        ia == vocab.end() ? a : b, "\" is not in the vocabulary"));
    }
    if (b.size() < prefix_len) {
      return JsonError(at, absl::StrCat("merge ", rank, " \"", a, " ", b,
                                        "\": second token lacks the continuing_subword_prefix"));
    }
    const std::string merged = a + b.substr(prefix_len);
    const auto im = vocab.find(merged);
    if (im == vocab.end()) {
      return JsonError(at, absl::StrCat("merge ", rank, " \"", a, " ", b, "\": the merged token \"",
                                        merged, "\" is not in the vocabulary"));
    }
    model->merges_[PairKey(ia->second, ib->second)] = {static_cast<int32_t>(rank), im->second};
  }
  if (options.unk_token) {
    const auto it = vocab.find(*options.unk_token);
    if (it == vocab.end()) {
      return JsonError(
          at, absl::StrCat("unk_token \"", *options.unk_token, "\" is not in the vocabulary"));
    }
    model->unk_id_ = it->second;
  }
  for (int b = 0; b < 256; ++b) {
    const auto level = vocab.find(ByteLevelAlphabet()[b]);
    model->byte_level_ids_[b] = level == vocab.end() ? -1 : level->second;
    const auto fallback = vocab.find(absl::StrFormat("<0x%02X>", b));
    model->byte_fallback_ids_[b] = fallback == vocab.end() ? -1 : fallback->second;
  }
  model->split_at_metaspace_ = options.continuing_subword_prefix.empty() &&
                               options.end_of_word_suffix.empty() && !options.ignore_merges &&
                               std::none_of(vocab.begin(), vocab.end(), [](const auto& entry) {
                                 const std::string& t = entry.first;
                                 for (size_t at = t.find(kMetaspace, 1); at != std::string::npos;
                                      at = t.find(kMetaspace, at + 1)) {
                                   if (!std::string_view(t).substr(0, at).ends_with(kMetaspace))
                                     return true;
                                 }
                                 return false;
                               });
  model->vocab_ = std::move(vocab);
  model->options_ = std::move(options);
  return model;
}

absl::StatusOr<absl::flat_hash_map<std::string, int32_t>> BpeModel::VocabFromJson(
    const Json& json, std::string_view where) {
  if (!json.is_object()) return JsonError(where, "expected a JSON object of token -> id");
  absl::flat_hash_map<std::string, int32_t> vocab;
  vocab.reserve(json.size());
  for (auto it = json.begin(); it != json.end(); ++it) {
    if (!it.value().is_number_integer()) {
      return JsonError(where, absl::StrCat("token \"", it.key(), "\" must map to an integer id"));
    }
    vocab[it.key()] = it.value().get<int32_t>();
  }
  return vocab;
}

absl::StatusOr<std::unique_ptr<BpeModel>> BpeModel::FromJson(const Json& json,
                                                             std::string_view where) {
  const std::string at = absl::StrCat(std::string(where), ": model");
  const auto vocab_json = json.find("vocab");
  absl::StatusOr<absl::flat_hash_map<std::string, int32_t>> vocab =
      VocabFromJson(vocab_json == json.end() ? Json() : *vocab_json, absl::StrCat(at, ".vocab"));
  if (!vocab.ok()) return vocab.status();
  const auto merges_json = json.find("merges");
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> merges =
      MergesFromJson(merges_json == json.end() ? Json() : *merges_json, at);
  if (!merges.ok()) return merges.status();

  BpeOptions options;
  absl::StatusOr<std::string> unk = GetString(json, "unk_token", at, "");
  absl::StatusOr<std::string> prefix = GetString(json, "continuing_subword_prefix", at, "");
  absl::StatusOr<std::string> suffix = GetString(json, "end_of_word_suffix", at, "");
  absl::StatusOr<bool> fuse_unk = GetBool(json, "fuse_unk", at, false);
  absl::StatusOr<bool> byte_fallback = GetBool(json, "byte_fallback", at, false);
  absl::StatusOr<bool> ignore_merges = GetBool(json, "ignore_merges", at, false);
  for (const absl::Status& s : {unk.status(), prefix.status(), suffix.status(), fuse_unk.status(),
                                byte_fallback.status(), ignore_merges.status()}) {
    if (!s.ok()) return s;
  }
  const auto dropout = json.find("dropout");
  if (dropout != json.end() && !dropout->is_null() &&
      !(dropout->is_number() && dropout->get<double>() == 0.0)) {
    return JsonError(at, "BPE dropout is random; only null or 0 is supported");
  }
  if (!unk->empty()) options.unk_token = *unk;
  options.continuing_subword_prefix = *prefix;
  options.end_of_word_suffix = *suffix;
  options.fuse_unk = *fuse_unk;
  options.byte_fallback = *byte_fallback;
  options.ignore_merges = *ignore_merges;
  return Create(std::move(*vocab), *merges, std::move(options), where);
}

void BpeModel::InitialSymbols(std::string_view word, bool byte_level,
                              std::vector<int32_t>& ids) const {
  const bool plain =
      options_.continuing_subword_prefix.empty() && options_.end_of_word_suffix.empty();
  int32_t pending_unk = -1;  // unknown characters waiting to be fused
  std::string symbol;
  for (size_t i = 0; i < word.size();) {
    const size_t start = i;
    i += byte_level ? 1 : Utf8Length(static_cast<unsigned char>(word[i]));
    i = std::min(i, word.size());
    int32_t id = -1;
    if (byte_level && plain) {
      id = byte_level_ids_[static_cast<unsigned char>(word[start])];
      if (id < 0) symbol = ByteLevelAlphabet()[static_cast<unsigned char>(word[start])];
    } else {
      symbol.clear();
      if (start > 0) symbol = options_.continuing_subword_prefix;
      if (byte_level) {
        symbol += ByteLevelAlphabet()[static_cast<unsigned char>(word[start])];
      } else {
        symbol.append(word.substr(start, i - start));
      }
      if (i == word.size()) symbol += options_.end_of_word_suffix;
      const auto it = vocab_.find(AbslView(symbol));
      if (it != vocab_.end()) id = it->second;
    }
    if (id >= 0) {
      if (pending_unk >= 0) ids.push_back(pending_unk);
      pending_unk = -1;
      ids.push_back(id);
      continue;
    }
    if (options_.byte_fallback && std::all_of(symbol.begin(), symbol.end(), [&](char c) {
          return byte_fallback_ids_[static_cast<unsigned char>(c)] >= 0;
        })) {
      for (char c : symbol) ids.push_back(byte_fallback_ids_[static_cast<unsigned char>(c)]);
      continue;
    }
    if (unk_id_) {
      if (pending_unk >= 0 && !options_.fuse_unk) ids.push_back(pending_unk);
      pending_unk = *unk_id_;
    }
  }
  if (pending_unk >= 0) ids.push_back(pending_unk);
}

void BpeModel::MergeSymbols(std::vector<int32_t>& ids) const {
  const int32_t n = static_cast<int32_t>(ids.size());
  if (n < 2) return;
  thread_local std::vector<int32_t> prev, next;
  thread_local std::vector<HeapEntry> heap;
  prev.resize(n);
  next.resize(n);
  heap.clear();
  for (int32_t i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
    if (i + 1 < n) {
      const auto it = merges_.find(PairKey(ids[i], ids[i + 1]));
      if (it != merges_.end()) heap.push_back({it->second.rank, i, it->second.new_id});
    }
  }
  std::make_heap(heap.begin(), heap.end());
  const auto push_pair = [&](int32_t left) {
    const int32_t right = next[left];
    if (left < 0 || right < 0) return;
    const auto it = merges_.find(PairKey(ids[left], ids[right]));
    if (it == merges_.end()) return;
    heap.push_back({it->second.rank, left, it->second.new_id});
    std::push_heap(heap.begin(), heap.end());
  };
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    const HeapEntry top = heap.back();
    heap.pop_back();
    const int32_t pos = top.pos;
    if (ids[pos] < 0 || next[pos] < 0) continue;
    const int32_t right = next[pos];
    // As in HF: the entry still applies when the pair at pos still merges into the same token.
    const auto it = merges_.find(PairKey(ids[pos], ids[right]));
    if (it == merges_.end() || it->second.new_id != top.new_id) continue;
    ids[pos] = top.new_id;
    ids[right] = -1;
    next[pos] = next[right];
    if (next[pos] >= 0) prev[next[pos]] = pos;
    if (prev[pos] >= 0) push_pair(prev[pos]);
    push_pair(pos);
  }
  ids.erase(std::remove(ids.begin(), ids.end(), -1), ids.end());
}

void BpeModel::EncodeWord(std::string_view word, bool byte_level, std::vector<int32_t>& out) const {
  if (!split_at_metaspace_ || byte_level) {
    EncodeChunk(word, byte_level, out);
    return;
  }
  size_t start = 0;
  for (size_t at = word.find(kMetaspace, 1); at != std::string_view::npos;
       at = word.find(kMetaspace, at + kMetaspace.size())) {
    if (word.substr(0, at).ends_with(kMetaspace)) continue;  // inside a run of U+2581
    EncodeChunk(word.substr(start, at - start), false, out);
    start = at;
  }
  EncodeChunk(word.substr(start), false, out);
}

void BpeModel::EncodeChunk(std::string_view word, bool byte_level,
                           std::vector<int32_t>& out) const {
  const bool cacheable = word.size() <= kMaxCachedWordBytes;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    const auto it = cache_.find(AbslView(word));
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  thread_local std::vector<int32_t> ids;
  ids.clear();
  std::optional<int32_t> whole;
  if (options_.ignore_merges) {
    std::string mapped;
    if (byte_level) AppendByteLevel(word, mapped);
    whole = TokenToId(byte_level ? std::string_view(mapped) : word);
  }
  if (whole) {
    ids.push_back(*whole);
  } else {
    InitialSymbols(word, byte_level, ids);
    MergeSymbols(ids);
  }
  out.insert(out.end(), ids.begin(), ids.end());
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cache_.size() < kCacheCapacity) cache_.emplace(std::string(word), ids);
  }
}

std::optional<int32_t> BpeModel::TokenToId(std::string_view token) const {
  const auto it = vocab_.find(AbslView(token));
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

std::string_view BpeModel::IdToToken(int32_t id) const {
  if (id < 0 || id >= size()) return {};
  return id_to_token_[id];
}

}  // namespace quantd::tokenizer
