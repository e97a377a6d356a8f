// The {"String": s} / {"Regex": r} -> content replacement used by the Replace normalizer and the
// Replace decoder.
#ifndef QUANTD_TOKENIZER_REPLACE_H_
#define QUANTD_TOKENIZER_REPLACE_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "json_util.h"
#include "regex.h"

namespace quantd::tokenizer {

class Replacement {
 public:
  // Reads "pattern" and "content" of a Replace object.
  static absl::StatusOr<Replacement> FromJson(const Json& json, const std::string& at);
  // Replaces every non-overlapping occurrence, left to right.
  void Apply(std::string& text) const;

 private:
  std::string literal_;
  std::shared_ptr<const Regex> regex_;
  std::string content_;
};

}  // namespace quantd::tokenizer

#endif  // QUANTD_TOKENIZER_REPLACE_H_
