// Calibration JSON lines on arbitrary bytes: row parsing ("text" / "input_ids"), Python's strip,
// the demo model's chat template and tokenizer on the texts, block cutting.
#include <cstdint>
#include <memory>

#include "calib/calibration.h"
#include "fuzz_input_file.h"
#include "quantd/tokenizer/tokenizer.h"

namespace {

constexpr char kModel[] = QUANTD_SOURCE_DIR "/demo/models/tiny-qwen2-wp/model";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto* tokenizer = quantd::tokenizer::Tokenizer::FromModelDir(kModel)->release();
  static const auto* chat = new quantd::engine::CalibrationChat(
      quantd::engine::LoadCalibrationChat(kModel));
  quantd::engine::CalibrationOptions options;
  options.calib_jsonl = quantd::fuzz::InputAsFile(data, size);
  options.num_calib = 16;
  options.max_seq_len = 8;
  options.system_prompt = "sys";
  options.vocab_size = 1000;
  (void)quantd::engine::BuildCalibration(options, tokenizer, chat, nullptr);
  return 0;
}
