#include "pre_tokenizer.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "byte_level.h"
#include "regex.h"
#include "unicode_class.h"
#include "utf8.h"

namespace quantd::tokenizer {
namespace {

// Splits every piece at a pattern.
class SplitPreTokenizer : public PreTokenizer {
 public:
  SplitPreTokenizer(std::unique_ptr<Regex> regex, SplitPattern pattern, SplitBehavior behavior,
                    bool invert)
      : regex_(std::move(regex)),
        pattern_(std::move(pattern)),
        behavior_(behavior),
        invert_(invert) {}
  void PreTokenize(PreTokenized& pt) const override {
    pt.next_pieces.clear();
    for (const auto& [begin, end] : pt.pieces) {
      SplitPiece(std::string_view(pt.text).substr(begin, end - begin), begin, pattern_, behavior_,
                 invert_, pt.segments, pt.next_pieces);
    }
    pt.pieces.swap(pt.next_pieces);
  }

 private:
  std::unique_ptr<Regex> regex_;  // owned here, referenced by pattern_
  SplitPattern pattern_;
  SplitBehavior behavior_;
  bool invert_;
};

std::unique_ptr<PreTokenizer> MakeRegexSplit(std::unique_ptr<Regex> regex, SplitBehavior behavior,
                                             bool invert) {
  SplitPattern pattern(regex.get());
  return std::make_unique<SplitPreTokenizer>(std::move(regex), std::move(pattern), behavior,
                                             invert);
}

std::unique_ptr<PreTokenizer> MakeCharSplit(std::function<bool(char32_t)> predicate,
                                            SplitBehavior behavior) {
  return std::make_unique<SplitPreTokenizer>(nullptr, SplitPattern(std::move(predicate)), behavior,
                                             false);
}

// Rewrites every piece with `transform(piece, out)`, which appends the new piece to out.
template <typename Transform>
void RewritePieces(PreTokenized& pt, Transform transform) {
  pt.next_text.clear();
  pt.next_pieces.clear();
  for (const auto& [begin, end] : pt.pieces) {
    const size_t start = pt.next_text.size();
    transform(std::string_view(pt.text).substr(begin, end - begin), begin, pt.next_text);
    if (pt.next_text.size() > start) pt.next_pieces.emplace_back(start, pt.next_text.size());
  }
  pt.text.swap(pt.next_text);
  pt.pieces.swap(pt.next_pieces);
}

class ByteLevelPreTokenizer : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, std::unique_ptr<PreTokenizer> regex_split)
      : add_prefix_space_(add_prefix_space), regex_split_(std::move(regex_split)) {}
  void DeferByteLevelMapping() override { defer_mapping_ = true; }
  void PreTokenize(PreTokenized& pt) const override {
    if (add_prefix_space_) {
      RewritePieces(pt, [](std::string_view piece, size_t, std::string& out) {
        if (piece.empty() || piece[0] != ' ') out.push_back(' ');
        out.append(piece);
      });
    }
    if (regex_split_ != nullptr) regex_split_->PreTokenize(pt);
    if (pt.byte_level) return;
    if (defer_mapping_) {
      pt.byte_level = true;
      return;
    }
    RewritePieces(
        pt, [](std::string_view piece, size_t, std::string& out) { AppendByteLevel(piece, out); });
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<PreTokenizer> regex_split_;  // GPT-2's pattern when use_regex
  bool defer_mapping_ = false;
};

char32_t FirstCodePoint(std::string_view s) {
  size_t i = 0;
  return NextCodePoint(s, i);
}

enum class PrependScheme { kAlways, kFirst, kNever };

class MetaspacePreTokenizer : public PreTokenizer {
 public:
  MetaspacePreTokenizer(std::string replacement, PrependScheme scheme, bool split)
      : replacement_(std::move(replacement)),
        scheme_(scheme),
        split_(split),
        split_at_(std::function<bool(char32_t)>(
            [c = FirstCodePoint(replacement_)](char32_t x) { return x == c; })) {}
  void PreTokenize(PreTokenized& pt) const override {
    const bool at_input_start = pt.at_input_start;
    RewritePieces(pt, [&](std::string_view piece, size_t offset, std::string& out) {
      const size_t start = out.size();
      for (char c : piece) {
        if (c == ' ') {
          out += replacement_;
        } else {
          out.push_back(c);
        }
      }
      const bool starts_with_replacement =
          std::string_view(out).substr(start).starts_with(replacement_);
      const bool prepend = scheme_ == PrependScheme::kAlways ||
                           (scheme_ == PrependScheme::kFirst && at_input_start && offset == 0);
      if (prepend && !starts_with_replacement) out.insert(start, replacement_);
    });
    if (!split_) return;
    pt.next_pieces.clear();
    for (const auto& [begin, end] : pt.pieces) {
      SplitPiece(std::string_view(pt.text).substr(begin, end - begin), begin, split_at_,
                 SplitBehavior::kMergedWithNext, false, pt.segments, pt.next_pieces);
    }
    pt.pieces.swap(pt.next_pieces);
  }

 private:
  std::string replacement_;
  PrependScheme scheme_;
  bool split_;
  SplitPattern split_at_;
};

class SequencePreTokenizer : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> steps)
      : steps_(std::move(steps)) {}
  void PreTokenize(PreTokenized& pt) const override {
    for (const auto& step : steps_) step->PreTokenize(pt);
  }
  void DeferByteLevelMapping() override {
    if (!steps_.empty()) steps_.back()->DeferByteLevelMapping();
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

absl::StatusOr<std::unique_ptr<PreTokenizer>> MakeByteLevel(bool add_prefix_space, bool use_regex) {
  std::unique_ptr<PreTokenizer> regex_split;
  if (use_regex) {
    absl::StatusOr<std::unique_ptr<Regex>> regex = Regex::Compile(kGpt2Pattern);
    if (!regex.ok()) return regex.status();
    regex_split = MakeRegexSplit(std::move(*regex), SplitBehavior::kIsolated, false);
  }
  return std::make_unique<ByteLevelPreTokenizer>(add_prefix_space, std::move(regex_split));
}

absl::StatusOr<std::unique_ptr<PreTokenizer>> SplitFromJson(const Json& json,
                                                            const std::string& at) {
  absl::StatusOr<std::string> behavior_name = GetString(json, "behavior", at);
  if (!behavior_name.ok()) return behavior_name.status();
  absl::StatusOr<SplitBehavior> behavior = ParseSplitBehavior(*behavior_name);
  if (!behavior.ok()) return JsonError(at, behavior.status().message());
  absl::StatusOr<bool> invert = GetBool(json, "invert", at, false);
  if (!invert.ok()) return invert.status();
  const auto pattern = json.find("pattern");
  std::string regex_text;
  if (pattern != json.end() && pattern->is_object() && pattern->contains("Regex") &&
      (*pattern)["Regex"].is_string()) {
    regex_text = (*pattern)["Regex"].get<std::string>();
  } else if (pattern != json.end() && pattern->is_object() && pattern->contains("String") &&
             (*pattern)["String"].is_string()) {
    regex_text = Regex::Escape((*pattern)["String"].get<std::string>());
  } else {
    return JsonError(at, "Split needs \"pattern\": {\"Regex\": ...} or {\"String\": ...}");
  }
  absl::StatusOr<std::unique_ptr<Regex>> regex = Regex::Compile(regex_text);
  if (!regex.ok()) return JsonError(at, regex.status().message());
  return MakeRegexSplit(std::move(*regex), *behavior, *invert);
}

absl::StatusOr<std::unique_ptr<PreTokenizer>> MetaspaceFromJson(const Json& json,
                                                                const std::string& at) {
  absl::StatusOr<std::string> replacement = GetString(json, "replacement", at, "\xE2\x96\x81");
  if (!replacement.ok()) return replacement.status();
  if (replacement->empty()) return JsonError(at, "Metaspace \"replacement\" must not be empty");
  absl::StatusOr<bool> split = GetBool(json, "split", at, true);
  if (!split.ok()) return split.status();
  // Older files say add_prefix_space instead of prepend_scheme.
  absl::StatusOr<bool> add_prefix_space = GetBool(json, "add_prefix_space", at, true);
  if (!add_prefix_space.ok()) return add_prefix_space.status();
  absl::StatusOr<std::string> scheme_name =
      GetString(json, "prepend_scheme", at, *add_prefix_space ? "always" : "never");
  if (!scheme_name.ok()) return scheme_name.status();
  PrependScheme scheme;
  if (*scheme_name == "always") {
    scheme = PrependScheme::kAlways;
  } else if (*scheme_name == "first") {
    scheme = PrependScheme::kFirst;
  } else if (*scheme_name == "never") {
    scheme = PrependScheme::kNever;
  } else {
    return JsonError(at, absl::StrCat("unknown prepend_scheme \"", *scheme_name,
                                      "\" (expected always, first or never)"));
  }
  return std::make_unique<MetaspacePreTokenizer>(*replacement, scheme, *split);
}

}  // namespace

absl::StatusOr<std::unique_ptr<PreTokenizer>> PreTokenizerFromJson(const Json& json,
                                                                   std::string_view where) {
  const std::string at = absl::StrCat(std::string(where), ": pre_tokenizer");
  absl::StatusOr<std::string> type = GetType(json, at);
  if (!type.ok()) return type.status();
  if (*type == "Split") return SplitFromJson(json, at);
  if (*type == "ByteLevel") {
    absl::StatusOr<bool> add_prefix_space = GetBool(json, "add_prefix_space", at, true);
    absl::StatusOr<bool> use_regex = GetBool(json, "use_regex", at, true);
    if (!add_prefix_space.ok()) return add_prefix_space.status();
    if (!use_regex.ok()) return use_regex.status();
    return MakeByteLevel(*add_prefix_space, *use_regex);
  }
  if (*type == "Metaspace") return MetaspaceFromJson(json, at);
  if (*type == "Digits") {
    absl::StatusOr<bool> individual = GetBool(json, "individual_digits", at, false);
    if (!individual.ok()) return individual.status();
    return MakeCharSplit([](char32_t c) { return c >= '0' && c <= '9'; },
                         *individual ? SplitBehavior::kIsolated : SplitBehavior::kContiguous);
  }
  if (*type == "Whitespace") {
    absl::StatusOr<std::unique_ptr<Regex>> regex = Regex::Compile("\\w+|[^\\w\\s]+");
    if (!regex.ok()) return regex.status();
    return MakeRegexSplit(std::move(*regex), SplitBehavior::kRemoved, /*invert=*/true);
  }
  if (*type == "WhitespaceSplit") return MakeCharSplit(IsWhiteSpace, SplitBehavior::kRemoved);
  if (*type == "Punctuation") {
    absl::StatusOr<std::string> name = GetString(json, "behavior", at, "Isolated");
    if (!name.ok()) return name.status();
    absl::StatusOr<SplitBehavior> behavior = ParseSplitBehavior(*name);
    if (!behavior.ok()) return JsonError(at, behavior.status().message());
    return MakeCharSplit(IsPunctuation, *behavior);
  }
  if (*type == "BertPreTokenizer") {
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    steps.push_back(MakeCharSplit(IsWhiteSpace, SplitBehavior::kRemoved));
    steps.push_back(MakeCharSplit(IsPunctuation, SplitBehavior::kIsolated));
    return std::make_unique<SequencePreTokenizer>(std::move(steps));
  }
  if (*type == "Sequence") {
    auto steps = ParseSequence<PreTokenizer>(json, "pretokenizers", at, [&](const Json& item) {
      return PreTokenizerFromJson(item, where);
    });
    if (!steps.ok()) return steps.status();
    return std::make_unique<SequencePreTokenizer>(std::move(*steps));
  }
  return JsonError(at, absl::StrCat("unsupported pre_tokenizer type \"", *type, "\""));
}

absl::StatusOr<std::unique_ptr<PreTokenizer>> MakeSplitThenByteLevel(std::string_view pattern) {
  absl::StatusOr<std::unique_ptr<Regex>> regex = Regex::Compile(pattern);
  if (!regex.ok()) return regex.status();
  absl::StatusOr<std::unique_ptr<PreTokenizer>> byte_level = MakeByteLevel(false, false);
  if (!byte_level.ok()) return byte_level.status();
  std::vector<std::unique_ptr<PreTokenizer>> steps;
  steps.push_back(MakeRegexSplit(std::move(*regex), SplitBehavior::kIsolated, false));
  steps.push_back(std::move(*byte_level));
  return std::make_unique<SequencePreTokenizer>(std::move(steps));
}

}  // namespace quantd::tokenizer
