// Post-processors of tokenizer.json for single sequences: TemplateProcessing, RobertaProcessing,
// BertProcessing, ByteLevel (ids unchanged) and Sequence of them.
#ifndef QUANTD_TOKENIZER_POST_PROCESSOR_H_
#define QUANTD_TOKENIZER_POST_PROCESSOR_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "json_util.h"

namespace quantd::tokenizer {

// What add_special_tokens adds around a single sequence: `prefix` + ids + `suffix`.
struct PostProcessor {
  std::vector<int32_t> prefix;
  std::vector<int32_t> suffix;

  void Apply(std::vector<int32_t>& ids) const {
    ids.insert(ids.begin(), prefix.begin(), prefix.end());
    ids.insert(ids.end(), suffix.begin(), suffix.end());
  }
};

absl::StatusOr<PostProcessor> PostProcessorFromJson(const Json& json, std::string_view where);

}  // namespace quantd::tokenizer

#endif  // QUANTD_TOKENIZER_POST_PROCESSOR_H_
