// The BPE model of HF tokenizers: a vocabulary and ranked merges, applied to each pre-token.
#ifndef QUANTD_TOKENIZER_BPE_MODEL_H_
#define QUANTD_TOKENIZER_BPE_MODEL_H_

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "json_util.h"

namespace quantd::tokenizer {

struct BpeOptions {
  std::optional<std::string> unk_token;
  std::string continuing_subword_prefix;
  std::string end_of_word_suffix;
  bool fuse_unk = false;
  bool byte_fallback = false;
  bool ignore_merges = false;
};

class BpeModel {
 public:
  // `merges` are pairs of vocabulary strings, highest priority first. Errors name `where`.
  static absl::StatusOr<std::unique_ptr<BpeModel>> Create(
      absl::flat_hash_map<std::string, int32_t> vocab,
      const std::vector<std::pair<std::string, std::string>>& merges, BpeOptions options,
      std::string_view where);

  // A {token: id} object (tokenizer.json "vocab", vocab.json); errors name `where`.
  static absl::StatusOr<absl::flat_hash_map<std::string, int32_t>> VocabFromJson(
      const Json& json, std::string_view where);

  // The model of a tokenizer.json "model" object of type BPE.
  static absl::StatusOr<std::unique_ptr<BpeModel>> FromJson(const Json& json,
                                                            std::string_view where);

  // Appends the ids of one pre-token. With `byte_level` the word is raw bytes, each standing for
  // its byte-level alphabet character.
  void EncodeWord(std::string_view word, bool byte_level, std::vector<int32_t>& out) const;

  std::optional<int32_t> TokenToId(std::string_view token) const;
  // Empty when the id is not in the vocabulary.
  std::string_view IdToToken(int32_t id) const;
  // One past the largest id.
  int32_t size() const { return static_cast<int32_t>(id_to_token_.size()); }
  // Number of vocabulary entries (HF's get_vocab_size).
  int32_t entries() const { return static_cast<int32_t>(vocab_.size()); }

 private:
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  static uint64_t PairKey(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }

  BpeModel() = default;
  // Encodes a piece of a word that BPE cannot merge across (see split_at_metaspace_).
  void EncodeChunk(std::string_view word, bool byte_level, std::vector<int32_t>& out) const;
  // Ids of the word's characters before any merge.
  void InitialSymbols(std::string_view word, bool byte_level, std::vector<int32_t>& ids) const;
  void MergeSymbols(std::vector<int32_t>& ids) const;

  absl::flat_hash_map<std::string, int32_t> vocab_;
  std::vector<std::string> id_to_token_;
  absl::flat_hash_map<uint64_t, Merge> merges_;
  BpeOptions options_;
  std::optional<int32_t> unk_id_;
  std::array<int32_t, 256> byte_level_ids_;     // id of each byte's alphabet character, or -1
  std::array<int32_t, 256> byte_fallback_ids_;  // id of "<0xXX>", or -1
  // No token holds another character followed by U+2581, so no merge crosses the start of a run
  // of U+2581: words (SentencePiece-style pipelines have no pre-tokenizer, the whole text is one
  // word) can be cut there, which keeps the merge heap small and makes the cache useful.
  bool split_at_metaspace_ = false;

  // Results per pre-token; most words of a text repeat.
  static constexpr size_t kCacheCapacity = 1 << 18;
  static constexpr size_t kMaxCachedWordBytes = 256;
  mutable std::mutex cache_mutex_;
  mutable absl::flat_hash_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace quantd::tokenizer

#endif  // QUANTD_TOKENIZER_BPE_MODEL_H_
