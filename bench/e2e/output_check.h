// A quick sanity check of a quantize-awq output directory for the end-to-end benchmark: the files
// a loader needs are there, every tensor of the AutoAWQ GEMM layout has the dtype and shape the
// geometry implies (shapes derived here from the config, not from the exporter's plan), the
// scales of a Linear are finite and positive, and the report counts exactly the calibration
// blocks that were asked for.
#ifndef QUANTD_BENCH_E2E_OUTPUT_CHECK_H_
#define QUANTD_BENCH_E2E_OUTPUT_CHECK_H_

#include <string>

#include "model/model_config.h"
#include "nlohmann/json.hpp"

namespace quantd::bench {

// "ok", or the first problem found. `blocks` <= 0: calibration from texts, any number of blocks.
std::string CheckAwqOutput(const std::string& out_dir, const engine::ModelConfig& config,
                           int blocks, int len, const nlohmann::json& report);

}  // namespace quantd::bench

#endif  // QUANTD_BENCH_E2E_OUTPUT_CHECK_H_
