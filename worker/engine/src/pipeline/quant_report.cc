#include "pipeline/quant_report.h"

#include "awq/clip_search.h"

namespace quantd::engine {

QuantReport::QuantReport(const QuantizeOptions& o, std::string backend) {
  settings_ = {
      {"model_dir", o.model_dir},
      {"calib_jsonl", o.calib_jsonl},
      {"num_calib", o.num_calib},
      {"max_seq_len", o.max_seq_len},
      {"w_bit", o.bits},
      {"q_group_size", o.group_size},
      {"zero_point", o.zero_point},
      {"version", o.version},
      {"apply_chat_template", o.apply_chat_template},
      {"seed", o.seed},
      {"dtype", o.output_dtype == OutputDtype::kBFloat16 ? "bfloat16" : "float16"},
      {"modules_to_not_convert", o.modules_to_not_convert},
      {"backend", std::move(backend)},
      {"duo_scaling", true},
      {"scale_grid", 20},
      {"clip_shrink_steps", kClipShrinkSteps},
  };
}

void QuantReport::SetCalibration(const CalibrationBlocks& c) {
  calibration_ = {{"rows_read", c.rows_read},
                  {"rows_skipped", c.rows_skipped},
                  {"texts_used", c.texts_used},
                  {"texts_too_long", c.texts_too_long},
                  {"tokens", c.tokens},
                  {"blocks", c.blocks.size()},
                  {"block_len", c.seq_len},
                  {"tokens_dropped", c.tokens - static_cast<int64_t>(c.blocks.size()) * c.seq_len}};
}

void QuantReport::AddLayer(int layer, const QuantizedLayer& q) {
  nlohmann::json groups = nlohmann::json::array();
  for (const ScalingDecision& d : q.scaling) {
    groups.push_back({{"group", d.label}, {"ratio", d.ratio}, {"loss", d.loss}});
  }
  nlohmann::json clips = nlohmann::json::object();
  for (const ClipDecision& c : q.clips) {
    double shrink_sum = 0.0;
    int64_t clipped = 0;
    for (uint8_t i : c.shrink_index) {
      shrink_sum += 1.0 - i / 20.0;
      clipped += i > 0 ? 1 : 0;
    }
    const double n = static_cast<double>(c.shrink_index.size());
    clips[c.linear] = {{"mean_shrink", shrink_sum / n}, {"fraction_clipped", clipped / n}};
  }
  layers_.push_back({{"layer", layer}, {"scaling_groups", groups}, {"clip", clips}});
}

void QuantReport::SetPhaseSeconds(Phase phase, double seconds) {
  phase_seconds_[PhaseName(phase)] = seconds;
}

void QuantReport::SetPerplexity(double float_ppl, double quantized_ppl, int64_t tokens) {
  evaluation_ = {{"perplexity_float", float_ppl},
                 {"perplexity_quantized", quantized_ppl},
                 {"tokens_scored", tokens}};
}

nlohmann::json QuantReport::ToJson() const {
  nlohmann::json j = {{"settings", settings_},
                      {"calibration", calibration_},
                      {"layers", layers_},
                      {"phase_seconds", phase_seconds_}};
  if (evaluation_.has_value()) j["evaluation"] = *evaluation_;
  return j;
}

}  // namespace quantd::engine
