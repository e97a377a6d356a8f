#include "pipeline/quant_report.h"

#include <cmath>
#include <limits>

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
      {"format", CheckpointFormatName(o.format)},
      {"scale_dtype", OutputDtypeName(ScaleDtypeOf(o.quant_format()))},
      {"eval_text", o.eval_text.empty() ? nlohmann::json(nullptr) : nlohmann::json(o.eval_text)},
      {"max_perplexity_increase_percent", o.max_perplexity_increase_percent.has_value()
                                              ? nlohmann::json(*o.max_perplexity_increase_percent)
                                              : nlohmann::json(nullptr)},
      {"attention_trials_use_float_kv", o.attention_trials_use_float_kv},
      {"apply_chat_template", o.apply_chat_template},
      {"seed", o.seed},
      {"dtype", OutputDtypeName(o.output_dtype)},
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
                  {"block_len", seq_len},
                  {"held_out_rows", c.held_out_rows},
                  {"held_out_tokens", c.held_out_tokens}};
}

nlohmann::json QuantReport::LayerEntry(int layer, const QuantizedLayer& q) {
  nlohmann::json groups = nlohmann::json::array();
  double layer_rtn = 0.0, layer_awq = 0.0;
  for (const ScalingDecision& d : q.scaling) {
    if (d.ratio_index < 0) {  // not searched (an under-calibrated expert): identity scales
      groups.push_back({{"group", d.label}, {"ratio", nullptr}, {"searched", false}});
      continue;
    }
    nlohmann::json g = {{"group", d.label}, {"ratio", d.ratio}, {"loss", d.loss}};
    if (std::isfinite(d.rtn_loss) && std::isfinite(d.awq_loss)) {
      // The group's output error before (round-to-nearest) and after AWQ, on the same tokens.
      g["rtn_loss"] = d.rtn_loss;
      g["awq_loss"] = d.awq_loss;
      g["awq_to_rtn"] = d.rtn_loss > 0.0 ? d.awq_loss / d.rtn_loss : 1.0;
      g["compare_tokens"] = d.compare_tokens;
      layer_rtn += d.rtn_loss;
      layer_awq += d.awq_loss;
    }
    groups.push_back(std::move(g));
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
  if (layer_rtn > 0.0) {
    entry["output_error"] = {
        {"rtn", layer_rtn}, {"awq", layer_awq}, {"awq_to_rtn", layer_awq / layer_rtn}};
  }
  if (q.moe.has_value()) {
    entry["moe"] = {{"tokens_per_expert", q.moe->tokens_per_expert},
                    {"under_calibrated_experts", q.moe->under_calibrated},
                    {"min_expert_tokens", q.moe->min_expert_tokens}};
  }
  return entry;
}

void QuantReport::AddLayerEntry(nlohmann::json entry) {
  // A resumed run's kept layers come back as entries: the MoE totals and the quality report's
  // error sums are counted from them.
  if (const auto moe = entry.find("moe"); moe != entry.end()) {
    moe_under_calibrated_ += static_cast<int64_t>(moe->at("under_calibrated_experts").size());
    moe_min_expert_tokens_ = moe->value("min_expert_tokens", int64_t{0});
    ++moe_layers_;
  }
  if (const auto error = entry.find("output_error"); error != entry.end()) {
    rtn_loss_sum_ += error->value("rtn", 0.0);
    awq_loss_sum_ += error->value("awq", 0.0);
  }
  layers_.push_back(std::move(entry));
}

void QuantReport::SetPhaseSeconds(Phase phase, double seconds) {
  phase_seconds_[PhaseName(phase)] = seconds;
}

double QuantReport::AwqToRtnErrorRatio() const {
  return rtn_loss_sum_ > 0.0 ? awq_loss_sum_ / rtn_loss_sum_
                             : std::numeric_limits<double>::quiet_NaN();
}

void QuantReport::SetQuality(const QualitySummary& q) {
  evaluation_ = {{"perplexity_float", q.perplexity_float},
                 {"perplexity_quantized", q.perplexity_quantized},
                 {"tokens_scored", q.tokens_scored}};
  nlohmann::json tp = nlohmann::json::array();
  std::vector<int> servable;
  for (const TensorParallelFit& f : q.tensor_parallel) {
    nlohmann::json e = {{"size", f.size}, {"servable", f.servable}, {"kernels", f.kernels}};
    if (!f.servable) e["reason"] = f.reason;
    tp.push_back(std::move(e));
    if (f.servable) servable.push_back(f.size);
  }
  quality_ = {{"source", q.source},
              {"tokens_scored", q.tokens_scored},
              {"perplexity_float", q.perplexity_float},
              {"perplexity_quantized", q.perplexity_quantized},
              {"perplexity_increase_percent", q.perplexity_increase_percent},
              {"awq_to_rtn_error_ratio", std::isfinite(q.awq_to_rtn_error_ratio)
                                             ? nlohmann::json(q.awq_to_rtn_error_ratio)
                                             : nlohmann::json(nullptr)},
              {"vllm_tensor_parallel_sizes", servable},
              {"vllm_tensor_parallel", tp}};
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
  if (quality_.has_value()) j["quality"] = *quality_;
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
