// quant_report.json: what a quantization did and what it cost — settings, calibration counts,
// the ratio every scaling group chose, clip statistics per Linear, time per phase and (with
// --eval_text) perplexity of the float and the quantized model.
#ifndef QUANTD_ENGINE_PIPELINE_QUANT_REPORT_H_
#define QUANTD_ENGINE_PIPELINE_QUANT_REPORT_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "nlohmann/json.hpp"
#include "pipeline/calibration_input.h"
#include "quantd/engine/quantize.h"

namespace quantd::engine {

class QuantReport {
 public:
  QuantReport(const QuantizeOptions& options, std::string backend);

  void SetCalibration(const CalibrationBlocks& calib);
  // Records a layer's decisions (scales and clip statistics, not the vectors themselves).
  void AddLayer(int layer, const QuantizedLayer& quantized);
  void SetPhaseSeconds(Phase phase, double seconds);
  void SetPerplexity(double float_ppl, double quantized_ppl, int64_t tokens);

  nlohmann::json ToJson() const;
  std::string Serialize() const { return ToJson().dump(2) + "\n"; }

 private:
  nlohmann::json settings_;
  nlohmann::json calibration_;
  nlohmann::json layers_ = nlohmann::json::array();
  std::map<std::string, double> phase_seconds_;
  std::optional<nlohmann::json> evaluation_;
};

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_PIPELINE_QUANT_REPORT_H_
