#include "pipeline/quant_report.h"

#include "awq/clip_search.h"

namespace quantd::engine {

QuantReport::QuantReport(const QuantizeOptions& o) {
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
      {"backend", nullptr},
      {"duo_scaling", true},
      {"scale_grid", 20},
      {"clip_shrink_steps", kClipShrinkSteps},
  };
  router_inputs_scaled_ = !o.moe_router_unscaled_for_testing;
}

void QuantReport::SetBackend(std::string name) { settings_["backend"] = std::move(name); }

void QuantReport::SetCalibration(const CalibrationCounts& c, int seq_len) {
  calibration_ = {{"lines", c.lines},
                  {"rows_valid", c.valid_rows},
                  {"rows_skipped", c.skipped_blank + c.skipped_unparsable + c.skipped_not_object +
                                       c.skipped_no_text + c.skipped_bad_input_ids},
                  {"skipped_blank", c.skipped_blank},
                  {"skipped_unparsable", c.skipped_unparsable},
                  {"skipped_not_object", c.skipped_not_object},
                  {"skipped_no_text", c.skipped_no_text},
                  {"skipped_bad_input_ids", c.skipped_bad_input_ids},
                  {"rows_sampled", c.sampled},
                  {"chat_fallbacks", c.chat_fallbacks},
                  {"texts_empty", c.texts_empty},
                  {"texts_over_length", c.texts_over_length},
                  {"texts_used", c.texts_used},
                  {"tokens", c.tokens},
                  {"tokens_dropped", c.tokens_dropped},
                  {"blocks", c.blocks},
                  {"block_len", seq_len}};
}

nlohmann::json QuantReport::LayerEntry(int layer, const QuantizedLayer& q) {
  nlohmann::json groups = nlohmann::json::array();
  for (const ScalingDecision& d : q.scaling) {
    if (d.ratio_index < 0) {  // not searched (an under-calibrated expert): identity scales
      groups.push_back({{"group", d.label}, {"ratio", nullptr}, {"searched", false}});
      continue;
    }
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
  nlohmann::json entry = {{"layer", layer}, {"scaling_groups", groups}, {"clip", clips}};
  if (q.moe.has_value()) {
    entry["moe"] = {{"tokens_per_expert", q.moe->tokens_per_expert},
                    {"under_calibrated_experts", q.moe->under_calibrated},
                    {"min_expert_tokens", q.moe->min_expert_tokens}};
  }
  return entry;
}

void QuantReport::AddLayerEntry(nlohmann::json entry) {
  // A resumed run's kept layers come back as entries: the MoE totals are counted from them.
  if (const auto moe = entry.find("moe"); moe != entry.end()) {
    moe_under_calibrated_ += static_cast<int64_t>(moe->at("under_calibrated_experts").size());
    moe_min_expert_tokens_ = moe->value("min_expert_tokens", int64_t{0});
    ++moe_layers_;
  }
  layers_.push_back(std::move(entry));
}

void QuantReport::SetPhaseSeconds(Phase phase, double seconds) {
  phase_seconds_[PhaseName(phase)] = seconds;
}

void QuantReport::SetPerplexity(double float_ppl, double quantized_ppl, int64_t tokens) {
  evaluation_ = {{"perplexity_float", float_ppl},
                 {"perplexity_quantized", quantized_ppl},
                 {"tokens_scored", tokens}};
}

void QuantReport::SetDeviceMemory(const DeviceMemoryReport& m) {
  device_memory_ = {{"plan", m.plan},
                    {"planned_bytes", m.planned_bytes},
                    {"peak_allocated_bytes", m.peak_allocated_bytes},
                    {"device_total_bytes", m.device_total_bytes},
                    {"device_free_bytes", m.device_free_bytes}};
}

void QuantReport::SetOverlapSeconds(const std::map<std::string, double>& seconds) {
  overlap_seconds_ = seconds;
}

nlohmann::json QuantReport::ToJson() const {
  nlohmann::json j = {{"settings", settings_},
                      {"calibration", calibration_},
                      {"layers", layers_},
                      {"phase_seconds", phase_seconds_}};
  if (!overlap_seconds_.empty()) j["overlap_seconds"] = overlap_seconds_;
  if (device_memory_.has_value()) j["device_memory"] = *device_memory_;
  if (evaluation_.has_value()) j["evaluation"] = *evaluation_;
  if (resume_.has_value()) j["resume"] = *resume_;
  if (moe_layers_ > 0) {
    // Experts routed fewer than min_expert_tokens tokens keep identity down_proj scales and get no
    // clip search (docs/moe.md); the per-layer entries name them.
    j["moe"] = {{"sparse_layers", moe_layers_},
                {"min_expert_tokens", moe_min_expert_tokens_},
                {"under_calibrated_experts", moe_under_calibrated_},
                {"router_inputs_scaled", router_inputs_scaled_}};
  }
  return j;
}

}  // namespace quantd::engine
