// The quality protocol of the repository's trained models (tests/data/SOURCES.md): the first 128
// calibration texts, plain (no chat template), 512-token blocks, perplexity on the model's held-out
// text, on the CPU reference backend.
#ifndef QUANTD_TESTS_ENGINE_TESTING_TRAINED_MODEL_PROTOCOL_H_
#define QUANTD_TESTS_ENGINE_TESTING_TRAINED_MODEL_PROTOCOL_H_

#include <string>

#include "quantd/engine/quantize.h"
#include "io_temp_dir.h"

namespace quantd::engine::testing {

// `root` holds model/, calib.jsonl and heldout.txt; the run writes under `dir`.
inline QuantizeOptions TrainedModelProtocol(const std::string& root, const std::string& dir) {
  QuantizeOptions o;
  o.model_dir = root + "/model";
  o.output_dir = dir + "/out";
  o.calib_jsonl = WriteFirstLines(root + "/calib.jsonl", 128, dir + "/calib_first.jsonl");
  o.num_calib = 128;
  o.max_seq_len = 512;
  o.apply_chat_template = false;
  o.eval_text = root + "/heldout.txt";
  o.backend = BackendKind::kCpu;
  return o;
}

}  // namespace quantd::engine::testing

#endif  // QUANTD_TESTS_ENGINE_TESTING_TRAINED_MODEL_PROTOCOL_H_
