#include "quantd/engine/calibration_preview.h"

#include "absl/synchronization/mutex.h"
#include "calib/calibration.h"
#include "calib/python_strip.h"

namespace quantd::engine {
namespace {

class CalibrationPreviewImpl final : public CalibrationPreview {
 public:
  CalibrationPreviewImpl(std::unique_ptr<tokenizer::Tokenizer> tokenizer,
                         std::optional<CalibrationChat> chat, std::string system_prompt)
      : tokenizer_(std::move(tokenizer)),
        chat_(std::move(chat)),
        system_prompt_(std::move(system_prompt)),
        bos_(tokenizer_->bos_token().value_or("")),
        eos_(tokenizer_->eos_token().value_or("")) {
    if (chat_ && !chat_->tmpl) fallback_reason_ = chat_->unavailable_reason;
  }

  std::string Render(std::string_view text) const override {
    if (!chat_) return std::string(text);
    const chat_template::ChatTemplate* tmpl = chat_->tmpl ? &*chat_->tmpl : nullptr;
    std::string reason;
    std::string prompt =
        RenderCalibrationPrompt(PythonStrip(text), system_prompt_, tmpl, bos_, eos_, &reason);
    if (tmpl != nullptr && !reason.empty()) {
      absl::MutexLock lock(&mu_);
      fallback_reason_ = std::move(reason);
    }
    return prompt;
  }

  absl::StatusOr<std::vector<int32_t>> Encode(std::string_view text) const override {
    return tokenizer_->Encode(PythonStrip(Render(text)), /*add_special_tokens=*/true);
  }

  std::string fallback_reason() const override {
    absl::MutexLock lock(&mu_);
    return fallback_reason_;
  }

 private:
  std::unique_ptr<tokenizer::Tokenizer> tokenizer_;
  std::optional<CalibrationChat> chat_;
  std::string system_prompt_;
  std::string bos_, eos_;
  mutable absl::Mutex mu_;
  mutable std::string fallback_reason_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

absl::StatusOr<std::unique_ptr<CalibrationPreview>> CalibrationPreview::Open(
    std::string_view model_dir, bool chat, std::string system_prompt) {
  absl::StatusOr<std::unique_ptr<tokenizer::Tokenizer>> tokenizer =
      tokenizer::Tokenizer::FromModelDir(model_dir);
  if (!tokenizer.ok()) return tokenizer.status();
  std::optional<CalibrationChat> calibration_chat;
  if (chat) calibration_chat = LoadCalibrationChat(model_dir);
  return std::make_unique<CalibrationPreviewImpl>(
      *std::move(tokenizer), std::move(calibration_chat), std::move(system_prompt));
}

}  // namespace quantd::engine
