// quant_report.json: what a quantization did and what it cost — settings, calibration counts,
// the ratio every scaling group chose, clip statistics per Linear, time per phase and (with
// --eval_text) perplexity of the float and the quantized model; with a device backend its memory
// plan and peak.
#ifndef QUANTD_ENGINE_PIPELINE_QUANT_REPORT_H_
#define QUANTD_ENGINE_PIPELINE_QUANT_REPORT_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "calib/calibration.h"
#include "nlohmann/json.hpp"
#include "quantd/engine/quantize.h"

namespace quantd::engine {

class QuantReport {
 public:
  explicit QuantReport(const QuantizeOptions& options);

  void SetBackend(std::string name);
  void SetCalibration(const CalibrationCounts& counts, int seq_len);
  // Records a layer's decisions (scales and clip statistics, not the vectors themselves).
  void AddLayer(int layer, const QuantizedLayer& quantized) {
    AddLayerEntry(LayerEntry(layer, quantized));
  }
  // The entry AddLayer records, and recording one (a resumed run's finished layers come back
  // from the resume journal this way).
  static nlohmann::json LayerEntry(int layer, const QuantizedLayer& quantized);
  void AddLayerEntry(nlohmann::json entry);
  // How a resumed run continued an interrupted one ("resume").
  void SetResume(nlohmann::json resume) { resume_ = std::move(resume); }
  void SetPhaseSeconds(Phase phase, double seconds);
  void SetPerplexity(double float_ppl, double quantized_ppl, int64_t tokens);
  // A device backend's memory plan and peak allocation ("device_memory").
  void SetDeviceMemory(const DeviceMemoryReport& memory);
  // Seconds of work done beside the backend and seconds waited for it ("overlap_seconds").
  void SetOverlapSeconds(const std::map<std::string, double>& seconds);

  nlohmann::json ToJson() const;
  std::string Serialize() const { return ToJson().dump(2) + "\n"; }

 private:
  nlohmann::json settings_;
  nlohmann::json calibration_;
  nlohmann::json layers_ = nlohmann::json::array();
  std::map<std::string, double> phase_seconds_;
  std::optional<nlohmann::json> evaluation_;
  std::optional<nlohmann::json> device_memory_;
  std::optional<nlohmann::json> resume_;
  std::map<std::string, double> overlap_seconds_;
  int moe_layers_ = 0;  // sparse layers recorded
  int64_t moe_under_calibrated_ = 0;
  int64_t moe_min_expert_tokens_ = 0;
  bool router_inputs_scaled_ = true;
};

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_PIPELINE_QUANT_REPORT_H_
