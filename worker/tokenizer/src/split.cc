#include "split.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "utf8.h"

namespace quantd::tokenizer {

absl::StatusOr<SplitBehavior> ParseSplitBehavior(std::string_view name) {
  if (name == "Removed") return SplitBehavior::kRemoved;
  if (name == "Isolated") return SplitBehavior::kIsolated;
  if (name == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (name == "Contiguous") return SplitBehavior::kContiguous;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown split behavior \"", std::string(name),
                   "\" (expected Removed, Isolated, MergedWithPrevious, MergedWithNext or "
                   "Contiguous)"));
}

void SplitPattern::FindSegments(std::string_view text, std::vector<Segment>& out) const {
  out.clear();
  if (text.empty()) {
    out.push_back({0, 0, false});
    return;
  }
  size_t prev = 0;
  const auto add_match = [&](size_t start, size_t end) {
    if (start != prev) out.push_back({prev, start, false});
    out.push_back({start, end, true});
    prev = end;
  };
  if (regex_ != nullptr) {
    regex_->ForEachMatch(text, add_match);
  } else {
    for (size_t i = 0; i < text.size();) {
      const size_t start = i;
      const char32_t c = NextCodePoint(text, i);
      if (predicate_(c)) add_match(start, i);
    }
  }
  if (prev != text.size()) out.push_back({prev, text.size(), false});
}

void SplitPiece(std::string_view text, size_t base, const SplitPattern& pattern,
                SplitBehavior behavior, bool invert, std::vector<Segment>& segs,
                std::vector<std::pair<size_t, size_t>>& out) {
  pattern.FindSegments(text, segs);
  if (invert) {
    for (Segment& s : segs) s.is_match = !s.is_match;
  }
  const auto emit = [&](size_t start, size_t end) {
    if (end > start) out.emplace_back(base + start, base + end);
  };
  switch (behavior) {
    case SplitBehavior::kRemoved:
      for (const Segment& s : segs) {
        if (!s.is_match) emit(s.start, s.end);
      }
      return;
    case SplitBehavior::kIsolated:
      for (const Segment& s : segs) emit(s.start, s.end);
      return;
    case SplitBehavior::kContiguous:
    case SplitBehavior::kMergedWithPrevious: {
      // A match joins the piece before it (Contiguous: runs of equal kind join).
      std::vector<Segment> merged;
      bool previous_match = false;
      for (const Segment& s : segs) {
        const bool join = behavior == SplitBehavior::kContiguous ? s.is_match == previous_match
                                                                 : s.is_match && !previous_match;
        if (join && !merged.empty()) {
          merged.back().end = s.end;
        } else {
          merged.push_back(s);
        }
        previous_match = s.is_match;
      }
      for (const Segment& s : merged) emit(s.start, s.end);
      return;
    }
    case SplitBehavior::kMergedWithNext: {
      // A match joins the piece after it: the mirror image of MergedWithPrevious.
      std::vector<Segment> merged;
      bool previous_match = false;
      for (auto it = segs.rbegin(); it != segs.rend(); ++it) {
        if (it->is_match && !previous_match && !merged.empty()) {
          merged.back().start = it->start;
        } else {
          merged.push_back(*it);
        }
        previous_match = it->is_match;
      }
      for (auto it = merged.rbegin(); it != merged.rend(); ++it) emit(it->start, it->end);
      return;
    }
  }
}

}  // namespace quantd::tokenizer
