// Splitting a piece of text at the matches of a pattern, with the delimiter behaviours of HF
// tokenizers (Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous).
#ifndef QUANTD_TOKENIZER_SPLIT_H_
#define QUANTD_TOKENIZER_SPLIT_H_

#include <cstddef>
#include <functional>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "regex.h"

namespace quantd::tokenizer {

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

absl::StatusOr<SplitBehavior> ParseSplitBehavior(std::string_view name);

struct Segment {
  size_t start;
  size_t end;
  bool is_match;
};

// What a piece is split at: the matches of a regex, or every single character for which a
// predicate holds (each such character is a match of its own, as in HF).
class SplitPattern {
 public:
  explicit SplitPattern(const Regex* regex) : regex_(regex) {}
  explicit SplitPattern(std::function<bool(char32_t)> predicate)
      : predicate_(std::move(predicate)) {}

  // The text cut into alternating non-match / match segments covering all of it.
  void FindSegments(std::string_view text, std::vector<Segment>& out) const;

 private:
  const Regex* regex_ = nullptr;
  std::function<bool(char32_t)> predicate_;
};

// Splits `text` (one piece) at the pattern, appending the resulting non-empty pieces, as offsets
// relative to `text` plus `base`, to `out`.
void SplitPiece(std::string_view text, size_t base, const SplitPattern& pattern,
                SplitBehavior behavior, bool invert, std::vector<Segment>& scratch,
                std::vector<std::pair<size_t, size_t>>& out);

}  // namespace quantd::tokenizer

#endif  // QUANTD_TOKENIZER_SPLIT_H_
