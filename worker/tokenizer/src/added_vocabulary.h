// Added tokens (special or not): matched in the text before the model runs, as HF does: first those
// with normalized=false on the raw text, then those with normalized=true on the normalized text.
#ifndef QUANTD_TOKENIZER_ADDED_VOCABULARY_H_
#define QUANTD_TOKENIZER_ADDED_VOCABULARY_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "json_util.h"

namespace quantd::tokenizer {

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
  bool special = false;
};

// One tokenizer.json "added_tokens" entry (or a tokenizer_config.json added_tokens_decoder value,
// with `id` given).
absl::StatusOr<AddedToken> AddedTokenFromJson(const Json& json, std::optional<int32_t> id,
                                              std::string_view where);

class AddedVocabulary {
 public:
  // A later token with the same content replaces the earlier one.
  void Add(AddedToken token);

  // A piece of the text: an added token (id >= 0) or text to tokenize (id == -1).
  struct Piece {
    size_t start;
    size_t end;
    int32_t id;
  };
  // Cuts `text` at the added tokens whose `normalized` flag equals `normalized`.
  void Split(std::string_view text, bool normalized, std::vector<Piece>& out) const;
  bool HasNormalizedTokens() const { return has_normalized_; }

  std::optional<int32_t> TokenToId(std::string_view content) const;
  const AddedToken* FindById(int32_t id) const;
  int32_t MaxId() const;

 private:
  std::vector<AddedToken> tokens_;
  absl::flat_hash_map<std::string, size_t> by_content_;
  absl::flat_hash_map<int32_t, size_t> by_id_;
  // Per first byte, the tokens that start with it, longest first.
  std::array<std::vector<size_t>, 256> by_first_byte_;
  bool has_normalized_ = false;
};

}  // namespace quantd::tokenizer

#endif  // QUANTD_TOKENIZER_ADDED_VOCABULARY_H_
