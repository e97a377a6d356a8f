// CalibrationPreview: what calibration feeds the model for one text, without running anything else.
// Backs `quantize-awq tokenize`, the first thing to run when calibration looks wrong.
#ifndef QUANTD_ENGINE_CALIBRATION_PREVIEW_H_
#define QUANTD_ENGINE_CALIBRATION_PREVIEW_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace quantd::engine {

class CalibrationPreview {
 public:
  virtual ~CalibrationPreview() = default;

  // Loads the model directory's tokenizer and, with `chat`, its chat template. A template that is
  // missing or cannot be parsed is not an error: texts then use the ChatML fallback, as in
  // calibration, and fallback_reason() says why.
  static absl::StatusOr<std::unique_ptr<CalibrationPreview>> Open(std::string_view model_dir,
                                                                  bool chat,
                                                                  std::string system_prompt);

  // The text as calibration renders it: the chat prompt ([system, user] with
  // add_generation_prompt) with `chat`, else the text unchanged.
  virtual std::string Render(std::string_view text) const = 0;

  // The token ids calibration uses for the text: Render(), stripped as Python's str.strip() does,
  // encoded with the tokenizer's special tokens (e.g. Llama's BOS).
  virtual absl::StatusOr<std::vector<int32_t>> Encode(std::string_view text) const = 0;

  // Why the ChatML fallback is used; empty when the model's own template renders.
  virtual std::string fallback_reason() const = 0;
};

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_CALIBRATION_PREVIEW_H_
