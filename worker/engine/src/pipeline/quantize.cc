// Quantize(): the engine's pipeline. LOADING (config, checkpoint headers, tokenizer when needed,
// geometry checks) → CALIBRATING (blocks of max_seq_len tokens) → QUANTIZING (layer by layer:
// read that layer's weights only, run the backend's AWQ step, hand the tensors to the exporter at
// once; with --eval_text the float and the quantized model's held-out activations advance through
// the same layer, so memory stays bounded by a few layers, never the whole model) → EVALUATING
// (final norm, lm_head, NLL) → EXPORTING (config and side files, quant_report.json, rename into
// place).
//
// Durable progress (pipeline/durable_progress.h): each finished layer is made durable in the
// output's staged files and recorded in a resume journal; a run into an output_dir that holds an
// interrupted run's progress checks it, replays the finished layers' float forward (no search)
// and quantizes only the rest.
//
// The quality report (docs/quality.md) is always made: held-out windows — a slice of the
// calibration file kept out of calibration, or --eval_text — advance through every layer inside
// the backend's QuantizeLayer (Backend::SetHeldOut: the float model's and the quantized model's
// states, on the weights the backend already holds), and each scaling group's error with
// round-to-nearest and with AWQ's scales is measured beside its search.
//
// Around the backend everything overlaps its work: a LayerPrefetcher reads layer i+1 from the
// memory-mapped checkpoint while the backend quantizes layer i (two layers of weights on the host
// at most; one for layers too large for two, memory_plan::LayersInFlight), and an ExportQueue
// converts and writes layer i (and the embedding / lm_head copies) while the backend works on the
// next ones.
#include "quantd/engine/quantize.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "backend/backend.h"
#include "calib/calibration.h"
#include "export/awq_export.h"
#include "export/serving_compat.h"
#include "io/checkpoint_reader.h"
#include "io/file_util.h"
#include "io/source_values.h"
#include "io/status_macros.h"
#include "model/architecture.h"
#include "model/memory_geometry.h"
#include "parallel/data_parallel_backend.h"
#include "pipeline/durable_progress.h"
#include "pipeline/eval_windows.h"
#include "pipeline/export_queue.h"
#include "pipeline/layer_prefetcher.h"
#include "pipeline/quant_report.h"
#include "pipeline/source_tensors.h"

namespace quantd::engine {
namespace {

// Share of the whole run's progress before each phase starts.
constexpr double kQuantizeStart = 0.05;
constexpr double kQuantizeEnd = 0.95;
// Layers whose output may wait for the writer besides the one being written: bounds the host
// memory the overlap costs.
constexpr int kMaxPendingWrites = 2;
constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

// What the exporter needs of a quantized layer.
struct LayerOutput {
  int layer = 0;
  std::vector<NamedTensor> floats;
  std::vector<QuantizedLinear> linears;  // canonical (LayerLinears order)
};

PackedLinear ToExportLinear(GemmPackedLinear g) {
  PackedLinear p;
  p.qweight = std::move(g.qweight);
  p.qzeros = std::move(g.qzeros);
  const int64_t groups = g.in_features / g.group_size;
  p.scales = Tensor({groups, g.out_features});
  for (size_t i = 0; i < g.scales.size(); ++i) {
    p.scales.data[i] = FromHalfBits(g.scale_dtype, g.scales[i]);
  }
  if (g.bias.has_value()) {
    Tensor b({g.out_features});
    for (size_t i = 0; i < g.bias->size(); ++i)
      b.data[i] = FromHalfBits(g.scale_dtype, (*g.bias)[i]);
    p.bias = std::move(b);
  }
  return p;
}

absl::Status WriteLayer(const ModelConfig& config, AwqExporter* exporter, LayerOutput& out) {
  QUANTD_RETURN_IF_ERROR(exporter->WriteLayerFloats(out.layer, out.floats));
  // Canonical Linears go out under their checkpoint names; the parts of a fused one (Phi-3's
  // qkv_proj) are joined first.
  const std::vector<LinearSpec> specs = LayerLinears(config);
  for (size_t i = 0; i < specs.size();) {
    size_t end = i + 1;
    while (end < specs.size() && specs[end].source == specs[i].source) ++end;
    if (end - i == 1 && specs[i].source == specs[i].name) {
      QUANTD_RETURN_IF_ERROR(exporter->WriteLinear(
          out.layer, specs[i].source, ToExportLinear(std::move(out.linears[i].packed))));
    } else {
      std::vector<const GemmPackedLinear*> parts;
      for (size_t j = i; j < end; ++j) parts.push_back(&out.linears[j].packed);
      QUANTD_RETURN_IF_ERROR(
          exporter->WriteLinear(out.layer, specs[i].source, ToExportLinear(ConcatOutputs(parts))));
    }
    i = end;
  }
  exporter->StartWriteback();  // the disk works while the GPU does: little is left for fsync
  return absl::OkStatus();
}

class PipelineRun {
 public:
  PipelineRun(const QuantizeOptions& options, EngineObserver* observer,
              const CancellationToken* cancel)
      : options_(options), observer_(observer), cancel_(cancel) {}

  absl::StatusOr<QuantizeResult> Execute();

 private:
  void Report(Phase phase, int done, int total, double fraction,
              std::optional<absl::Duration> eta = std::nullopt) {
    if (observer_ == nullptr) return;
    Progress p;
    p.phase = phase;
    p.layers_done = done;
    p.layers_total = total;
    p.fraction = fraction;
    p.eta = eta;
    p.tokens_per_layer = calib_tokens_;
    p.resumed_at_layer = progress_ != nullptr ? progress_->resume_layer() : 0;
    observer_->OnProgress(p);
  }
  void Log(LogLevel level, const std::string& message) {
    if (observer_ != nullptr) observer_->OnLog(level, message);
  }
  absl::Status CheckCancel() const {
    if (cancel_ != nullptr && cancel_->cancelled()) {
      return absl::CancelledError("quantization cancelled");
    }
    return absl::OkStatus();
  }
  // Ends the timing of `phase` and starts the next one.
  void EndPhase(Phase phase) {
    const absl::Time now = absl::Now();
    report_->SetPhaseSeconds(phase, absl::ToDoubleSeconds(now - phase_start_));
    phase_start_ = now;
  }

  absl::Status ValidateOptions() const;
  absl::Status Load();
  absl::Status Calibrate();
  // Waits for the backend started by Load() (QuantizeLayers does, just before embedding).
  absl::Status AwaitBackend();
  absl::Status QuantizeLayers();
  // A kept layer of an interrupted run: the float forward only (and, with --eval_text, the
  // evaluation activations through the float and the staged quantized layer).
  absl::Status ReplayLayer(int layer, LayerWeights weights);
  absl::Status Evaluate();
  absl::StatusOr<QuantizeResult> Export();
  // Queues a write for the writer thread (the only one that touches the exporter until Export).
  absl::Status Write(ExportQueue::Task task) { return writes_->Submit(std::move(task)); }
  void LogDeviceMemory(const char* when);
  // The float dtype of the output (kAuto resolved), in which the quantized model is evaluated.
  DType QuantizedModelDtype() const {
    return FloatDTypeOf(ResolveOutputDtype(source_.config, options_.output_dtype));
  }
  // The checkpoint's format with the output dtype resolved for this model.
  QuantFormat ResolvedFormat() const {
    QuantFormat f = options_.quant_format();
    f.output_dtype = ResolveOutputDtype(source_.config, f.output_dtype);
    return f;
  }

  const QuantizeOptions& options_;
  EngineObserver* observer_;
  const CancellationToken* cancel_;
  absl::Time phase_start_ = absl::Now();

  SourceModel source_;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer_;
  struct StartedBackend {
    absl::StatusOr<std::unique_ptr<Backend>> backend;
    double seconds = 0.0;
  };
  std::future<StartedBackend> backend_start_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<AwqExporter> exporter_;
  std::unique_ptr<DurableProgress> progress_;  // before writes_: the writer stops before it goes
  std::unique_ptr<ExportQueue> writes_;        // after exporter_: stops before the exporter goes
  std::unique_ptr<QuantReport> report_;
  CalibrationSet calib_;
  std::vector<std::vector<int32_t>> blocks_;
  int64_t calib_tokens_ = 0;  // tokens each layer runs (blocks_ is released once embedded)
  absl::Status tokenizer_status_;
  std::optional<EvalWindows> eval_;
  std::string eval_source_;                      // "held_out" or "eval_text"
  std::future<absl::StatusOr<Tensor>> lm_head_;  // read beside the layers when evaluating
  std::unique_ptr<Activations> hidden_, eval_float_, eval_quantized_;
  std::optional<QualitySummary> quality_;
  double layer_read_wait_ = 0.0, layer_read_background_ = 0.0;
};

absl::Status PipelineRun::ValidateOptions() const {
  QUANTD_RETURN_IF_ERROR(CheckQuantFormat(
      options_.quant_format(),
      {"format", "bits", "group_size", "zero_point", "output_dtype", "scale_dtype"}));
  if (options_.version != "gemm" && options_.version != "GEMM") {
    return absl::InvalidArgumentError(
        absl::StrCat("version: only \"gemm\" is written, got \"", options_.version, "\""));
  }
  QUANTD_RETURN_IF_ERROR(
      CheckModulePatterns(options_.modules_to_not_convert, "modules_to_not_convert"));
  if (options_.max_perplexity_increase_percent.has_value()) {
    QUANTD_RETURN_IF_ERROR(CheckPerplexityThreshold(*options_.max_perplexity_increase_percent,
                                                    "max_perplexity_increase_percent"));
  }
  if (options_.num_calib <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_calib: expected a positive number, got ", options_.num_calib));
  }
  if (options_.max_seq_len <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_seq_len: expected a positive number, got ", options_.max_seq_len));
  }
  // At most 64: the CUDA backend keeps its per-device figures in arrays of that size.
  if (options_.gpus <= 0 || options_.gpus > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("gpus: expected a number of GPUs in 1..64, got ", options_.gpus));
  }
  if (options_.output_dir.empty()) return absl::InvalidArgumentError("output_dir: not set");
  return absl::OkStatus();
}

absl::Status PipelineRun::Load() {
  Report(Phase::kLoading, 0, 0, 0.0);
  QUANTD_RETURN_IF_ERROR(ValidateOptions());
  // The backend starts (CUDA context, cuBLAS) while the model is opened and calibration is read.
  // One GPU or several, the same data-parallel backend (a group of one for one GPU).
  backend_start_ = std::async(std::launch::async, [kind = options_.backend, gpus = options_.gpus] {
    const absl::Time start = absl::Now();
    StartedBackend b{CreateDataParallelBackend(kind, gpus)};
    b.seconds = absl::ToDoubleSeconds(absl::Now() - start);
    return b;
  });
  QUANTD_ASSIGN_OR_RETURN(source_, OpenSourceModel(options_.model_dir, options_.group_size,
                                                   options_.modules_to_not_convert));
  const ModelConfig& config = source_.config;
  // AutoAWQ cannot leave a Linear inside a decoder layer in float (its scaling groups would miss
  // the input cache); only modules outside the layers (lm_head) may be excluded.
  for (int i = 0; i < config.num_hidden_layers; ++i) {
    for (const LinearSpec& linear : LayerLinears(config)) {
      const std::string name = LayerTensorName(i, linear.source);
      if (IsNotConverted(name, options_.modules_to_not_convert)) {
        return absl::FailedPreconditionError(absl::StrCat(
            "modules_to_not_convert excludes ", name,
            ", a Linear inside a decoder layer; AWQ's scaling groups need every Linear of ",
            config.architecture_name, " layers quantized (only lm_head may be excluded)"));
      }
    }
  }
  // A model directory without tokenizer files works with pre-tokenized calibration (the parity
  // fixture); text rows or --eval_text then report why the tokenizer is missing.
  absl::StatusOr<std::unique_ptr<tokenizer::Tokenizer>> tok =
      tokenizer::Tokenizer::FromModelDir(options_.model_dir);
  if (tok.ok()) {
    tokenizer_ = std::move(*tok);
  } else {
    tokenizer_status_ = tok.status();
    if (!options_.eval_text.empty()) return tok.status();
  }
  // The output dtype is known now: the format's rules again with it (a compressed-tensors scale
  // dtype must equal it).
  QUANTD_RETURN_IF_ERROR(CheckQuantFormat(
      ResolvedFormat(),
      {"format", "bits", "group_size", "zero_point", "output_dtype", "scale_dtype"}));
  QuantizeOptions reported = options_;  // the report names the dtype actually written
  reported.output_dtype = ResolveOutputDtype(config, options_.output_dtype);
  report_ = std::make_unique<QuantReport>(reported);
  Log(LogLevel::kInfo,
      absl::StrCat(
          "model: ", config.architecture_name, ", ", config.num_hidden_layers, " layers, hidden ",
          config.hidden_size, ", dtype ", std::string(DTypeName(config.dtype)),
          config.compute_dtype != config.dtype
              ? absl::StrCat(" (computed in ", std::string(DTypeName(config.compute_dtype)),
                             ": this family's activations overflow float16)")
              : "",
          "; output dtype ",
          std::string(DTypeName(FloatDTypeOf(ResolveOutputDtype(config, options_.output_dtype))))));
  EndPhase(Phase::kLoading);
  return CheckCancel();
}

absl::Status PipelineRun::AwaitBackend() {
  const absl::Time start = absl::Now();
  StartedBackend started = backend_start_.get();
  QUANTD_ASSIGN_OR_RETURN(backend_, std::move(started.backend));
  report_->SetBackend(std::string(backend_->name()));
  Log(LogLevel::kInfo,
      absl::StrFormat("backend %s (started in %.2fs, %.2fs of it beside loading, calibrating and "
                      "reading the embedding)",
                      std::string(backend_->name()), started.seconds,
                      std::max(0.0, started.seconds - absl::ToDoubleSeconds(absl::Now() - start))));
  return absl::OkStatus();
}

absl::Status PipelineRun::Calibrate() {
  Report(Phase::kCalibrating, 0, source_.config.num_hidden_layers, 0.02);
  const CalibrationChat chat =
      options_.apply_chat_template ? LoadCalibrationChat(options_.model_dir) : CalibrationChat{};
  absl::StatusOr<CalibrationSet> calib =
      BuildCalibration(CalibrationOptions::From(options_, source_.config.vocab_size),
                       tokenizer_.get(), options_.apply_chat_template ? &chat : nullptr, observer_);
  if (!calib.ok()) {
    if (tokenizer_ == nullptr && !tokenizer_status_.ok()) {
      return absl::Status(calib.status().code(),
                          absl::StrCat(calib.status().message(),
                                       " (tokenizer: ", tokenizer_status_.message(), ")"));
    }
    return calib.status();
  }
  calib_ = std::move(*calib);
  report_->SetCalibration(calib_.counts, calib_.seq_len);
  for (int64_t b = 0; b < calib_.num_blocks(); ++b) {
    const absl::Span<const int32_t> block = calib_.block(b);
    blocks_.emplace_back(block.begin(), block.end());
    calib_tokens_ += static_cast<int64_t>(block.size());
  }
  if (!options_.dump_calib.empty()) {
    QUANTD_RETURN_IF_ERROR(WriteCalibrationDump(options_.dump_calib, calib_));
  }
  calib_.ids = {};  // blocks_ holds the tokens now
  if (!options_.eval_text.empty()) {
    QUANTD_ASSIGN_OR_RETURN(eval_, LoadEvalWindows(options_.eval_text, *tokenizer_));
    eval_source_ = "eval_text";
  } else {
    EvalWindows held_out = HeldOutWindows(calib_.held_out_ids, calib_.seq_len);
    if (held_out.inputs.empty()) {
      Log(LogLevel::kWarning,
          "quality: nothing held out of calib_jsonl to score (it has fewer than 2 usable rows); "
          "pass --eval_text for the quality report");
    } else {
      eval_ = std::move(held_out);
      eval_source_ = "held_out";
    }
  }
  calib_.held_out_ids = {};
  EndPhase(Phase::kCalibrating);
  return CheckCancel();
}

void PipelineRun::LogDeviceMemory(const char* when) {
  const int64_t tokens = calib_.counts.blocks * calib_.seq_len;
  std::optional<DeviceMemoryReport> m =
      backend_->DeviceMemory(source_.config, source_.config.compute_dtype, tokens);
  if (!m.has_value()) return;
  report_->SetDeviceMemory(*m);
  if (std::string_view(when).empty()) {
    Log(LogLevel::kInfo, m->plan);
  } else {
    Log(LogLevel::kInfo,
        absl::StrFormat("GPU memory %s: peak %.2f GiB allocated by the backend (plan %.2f GiB); "
                        "%.1f of %.1f GiB free on the device",
                        when, static_cast<double>(m->peak_allocated_bytes) / kGiB,
                        static_cast<double>(m->planned_bytes) / kGiB,
                        static_cast<double>(m->device_free_bytes) / kGiB,
                        static_cast<double>(m->device_total_bytes) / kGiB));
  }
}

absl::Status PipelineRun::ReplayLayer(int layer, LayerWeights weights) {
  const ModelConfig& config = source_.config;
  if (eval_float_ != nullptr) {
    QUANTD_RETURN_IF_ERROR(
        backend_->ForwardLayer(config, config.compute_dtype, weights, eval_float_.get()));
  }
  QUANTD_RETURN_IF_ERROR(
      backend_->ForwardLayer(config, config.compute_dtype, weights, hidden_.get()));
  if (eval_quantized_ != nullptr) {
    QUANTD_ASSIGN_OR_RETURN(QuantizedLayer q, progress_->KeptLayer(config, layer));
    QUANTD_RETURN_IF_ERROR(backend_->ForwardLayer(config, QuantizedModelDtype(),
                                                  DequantizedLayer(q), eval_quantized_.get()));
  }
  report_->AddLayerEntry(progress_->KeptReportEntry(layer));
  return CheckCancel();
}

absl::Status PipelineRun::QuantizeLayers() {
  const ModelConfig& config = source_.config;
  const CheckpointReader& reader = *source_.weights;
  const int n = config.num_hidden_layers;
  Report(Phase::kQuantizing, 0, n, kQuantizeStart);
  QUANTD_ASSIGN_OR_RETURN(
      progress_,
      DurableProgress::Prepare(options_, source_, BackendNameFor(options_.backend), blocks_,
                               [this](LogLevel level, const std::string& m) { Log(level, m); }));
  const int resume = progress_->resume_layer();
  ExportOptions export_options = ExportOptions::From(options_, config);
  export_options.reuse_staged = resume > 0;
  QUANTD_ASSIGN_OR_RETURN(exporter_, AwqExporter::Create(config, export_options));
  QUANTD_RETURN_IF_ERROR(progress_->Begin(*exporter_));
  const int first = progress_->resume_layer();  // Begin may have had to start over
  writes_ = std::make_unique<ExportQueue>(kMaxPendingWrites);
  // Layer 0 is read while the embedding is; the float tensors outside the layers are copied to
  // the output by the writer while the backend quantizes.
  // Each layer read is staged on the backend's device (the copy overlaps the current layer's
  // work) once the backend is up; layer 0 is read during its start and uploaded when quantized.
  // Replayed layers are not staged (their forward uploads them): the first one to quantize is.
  // Layers too large to hold two of (Mixtral-8x7B) are read, and held on the device, one at a
  // time (memory_plan::LayersInFlight): the backend drops its host copy once uploaded, and the
  // next read starts then.
  const memory_plan::MemoryEstimate layer_memory =
      memory_plan::EstimateMemory(MemoryGeometryOf(config, config.compute_dtype));
  const int in_flight = memory_plan::LayersInFlight(layer_memory);
  if (in_flight < 2) {
    Log(LogLevel::kInfo,
        absl::StrFormat("a layer's weights take %.1f GiB (float32 and %s): layers are read and "
                        "held one at a time, the next read once the current one is uploaded",
                        layer_memory.weights / kGiB, std::string(DTypeName(config.compute_dtype))));
  }
  // Layers come with their Linears still in the checkpoint: a backend that reads them itself
  // (the CUDA backend streams them to the GPU) gets them so, the others read, here while the
  // backend works (or on this thread for layers read before the backend was up).
  std::atomic<Backend*> stage_on{nullptr};
  LayerPrefetcher layers(
      &reader, &config,
      [&stage_on, &config, this, first, read = 0](LayerWeights* w) mutable -> absl::Status {
        const int layer = read++;
        progress_->NoteSourceLayer(layer);
        Backend* b = stage_on.load();
        if (b == nullptr) return absl::OkStatus();
        if (!b->ReadsLayerSources()) return MaterializeLayer(w);
        if (layer >= first) b->StageLayer(config, config.compute_dtype, *w);
        return absl::OkStatus();
      },
      in_flight);
  // The next layer as the backend takes it.
  auto next_layer = [&layers, this]() -> absl::StatusOr<LayerWeights> {
    QUANTD_ASSIGN_OR_RETURN(LayerWeights w, layers.Next());
    if (!backend_->ReadsLayerSources()) QUANTD_RETURN_IF_ERROR(MaterializeLayer(&w));
    return w;
  };
  for (const char* name : {kEmbedTokensName, kLmHeadName}) {
    if (std::string_view(name) == kLmHeadName && config.tie_word_embeddings) continue;
    QUANTD_RETURN_IF_ERROR(Write([this, &reader, name] {
      QUANTD_RETURN_IF_ERROR(CopySourceTensor(reader, name, exporter_.get(), name));
      exporter_->StartWriteback();
      return absl::OkStatus();
    }));
  }
  {
    std::vector<const std::vector<std::vector<int32_t>>*> sets = {&blocks_};
    if (eval_.has_value()) sets.push_back(&eval_->inputs);
    QUANTD_ASSIGN_OR_RETURN(EmbeddingRows embedding, ReadEmbeddingRows(reader, sets));
    ScaleEmbeddingRows(config, config.compute_dtype, &embedding.rows);
    blocks_ = {};                            // the renumbered copy is what the backend embeds
    QUANTD_RETURN_IF_ERROR(AwaitBackend());  // everything above overlapped its start
    stage_on.store(backend_.get());
    QUANTD_ASSIGN_OR_RETURN(std::unique_ptr<Activations> hidden,
                            backend_->Embed(embedding.rows, embedding.block_sets[0]));
    hidden_ = std::move(hidden);
    if (eval_.has_value()) {
      QUANTD_ASSIGN_OR_RETURN(eval_float_,
                              backend_->Embed(embedding.rows, embedding.block_sets[1]));
      QUANTD_ASSIGN_OR_RETURN(eval_quantized_,
                              backend_->Embed(embedding.rows, embedding.block_sets[1]));
    }
  }
  LogDeviceMemory("");

  // An interrupted run's finished layers: their float forward rebuilds layer `first`'s input
  // (AWQ feeds each layer the float model's activations, spec/awq.md §2.3). Without evaluation,
  // a run whose every layer is kept needs none of it.
  const absl::Time replay_start = absl::Now();
  const int replay = eval_.has_value() || first < n ? first : 0;
  for (int i = 0; i < first; ++i) {
    QUANTD_ASSIGN_OR_RETURN(LayerWeights weights, next_layer());
    if (i < replay) {
      QUANTD_RETURN_IF_ERROR(ReplayLayer(i, std::move(weights)));
    } else {
      report_->AddLayerEntry(progress_->KeptReportEntry(i));
    }
  }
  if (first > 0) {
    const double replay_seconds = absl::ToDoubleSeconds(absl::Now() - replay_start);
    report_->SetResume(progress_->ReportEntry(replay_seconds));
    Log(LogLevel::kInfo,
        absl::StrFormat("resumed at layer %d of %d: %d layers kept from the interrupted run, their "
                        "float forward replayed in %.2fs (%.3fs a layer)",
                        first, n, first, replay_seconds, replay_seconds / first));
    Report(Phase::kQuantizing, first, n,
           kQuantizeStart + (kQuantizeEnd - kQuantizeStart) * first / n);
  }

  LayerQuantSettings settings{options_.group_size, config.compute_dtype, /*apply_clip=*/true,
                              options_.attention_trials_use_float_kv};
  settings.scale_router_inputs = !options_.moe_router_unscaled_for_testing;
  settings.zero_point = options_.zero_point;
  // The final quantization computes in the scales' dtype (GEMM: float16).
  settings.scale_dtype = FloatDTypeOf(ScaleDtypeOf(ResolvedFormat()));
  if (eval_float_ != nullptr) {
    // The quantized model is evaluated in the dtype it is exported for (the serving engine's).
    backend_->SetHeldOut({eval_float_.get(), eval_quantized_.get(), QuantizedModelDtype()});
    // lm_head (the embedding when tied) is read and converted beside the layers.
    lm_head_ = std::async(std::launch::async,
                          [this] { return source_.weights->LoadLmHead(source_.config); });
  }
  const absl::Time start = absl::Now();
  for (int i = first; i < n; ++i) {
    QUANTD_RETURN_IF_ERROR(CheckCancel());
    QUANTD_ASSIGN_OR_RETURN(LayerWeights weights, next_layer());
    QUANTD_ASSIGN_OR_RETURN(
        QuantizedLayer q,
        backend_->QuantizeLayer(config, settings, std::move(weights), hidden_.get(), cancel_));
    if (i == first) LogDeviceMemory("after the first layer");
    nlohmann::json entry = QuantReport::LayerEntry(i, q);
    report_->AddLayerEntry(entry);
    if (q.moe.has_value() && !q.moe->under_calibrated.empty()) {
      std::string experts;
      for (int e : q.moe->under_calibrated) {
        absl::StrAppend(&experts, experts.empty() ? "" : ", ", e, " (",
                        q.moe->tokens_per_expert[static_cast<size_t>(e)], " tokens)");
      }
      Log(LogLevel::kWarning,
          absl::StrFormat("layer %d: %d experts were routed fewer than %d calibration tokens and "
                          "keep identity down_proj scales and unclipped weights: %s",
                          i, q.moe->under_calibrated.size(), q.moe->min_expert_tokens, experts));
    }
    auto out = std::make_shared<LayerOutput>();
    out->layer = i;
    std::map<std::string, std::vector<float>> floats;
    for (const NamedTensor& f : q.floats) floats[f.name] = f.tensor.data;
    out->floats = std::move(q.floats);
    out->linears = std::move(q.linears);
    QUANTD_RETURN_IF_ERROR(
        Write([this, out, entry = std::move(entry), floats = std::move(floats)]() mutable {
          QUANTD_RETURN_IF_ERROR(WriteLayer(source_.config, exporter_.get(), *out));
          return progress_->CommitLayer(out->layer, std::move(entry), std::move(floats));
        }));
    const absl::Duration elapsed = absl::Now() - start;
    const int done = i + 1 - first;
    const absl::Duration eta = elapsed / done * (n - i - 1);
    std::string ratios;
    for (const ScalingDecision& d : q.scaling) absl::StrAppend(&ratios, " ", d.ratio);
    Log(LogLevel::kInfo, absl::StrFormat("layer %d/%d quantized (%.2fs per layer); ratios:%s",
                                         i + 1, n, absl::ToDoubleSeconds(elapsed) / done, ratios));
    Report(Phase::kQuantizing, i + 1, n,
           kQuantizeStart + (kQuantizeEnd - kQuantizeStart) * (i + 1) / n, eta);
  }
  layer_read_wait_ = layers.wait_seconds();
  layer_read_background_ = layers.read_seconds();
  EndPhase(Phase::kQuantizing);
  return CheckCancel();
}

absl::Status PipelineRun::Evaluate() {
  const ModelConfig& config = source_.config;
  QUANTD_ASSIGN_OR_RETURN(Tensor final_norm, source_.weights->LoadFinalNorm());
  auto norm = std::make_shared<Tensor>(final_norm);
  QUANTD_RETURN_IF_ERROR(
      Write([this, norm] { return exporter_->WriteFloat(kFinalNormName, *norm); }));
  // lm_head (untied) is copied to the output by the writer since QuantizeLayers.
  if (eval_.has_value()) {
    QUANTD_ASSIGN_OR_RETURN(Tensor lm_head, lm_head_.get());
    Report(Phase::kEvaluating, config.num_hidden_layers, config.num_hidden_layers, kQuantizeEnd);
    const DType quantized_md = QuantizedModelDtype();
    QUANTD_ASSIGN_OR_RETURN(const double nll_float,
                            backend_->NextTokenNll(config, config.compute_dtype, final_norm,
                                                   lm_head, *eval_float_, eval_->targets));
    QUANTD_ASSIGN_OR_RETURN(const double nll_quant,
                            backend_->NextTokenNll(config, quantized_md, final_norm, lm_head,
                                                   *eval_quantized_, eval_->targets));
    const int64_t tokens = eval_->tokens_scored();
    QualitySummary q;
    q.source = eval_source_;
    q.tokens_scored = tokens;
    q.perplexity_float = std::exp(nll_float / static_cast<double>(tokens));
    q.perplexity_quantized = std::exp(nll_quant / static_cast<double>(tokens));
    q.perplexity_increase_percent = 100.0 * (q.perplexity_quantized / q.perplexity_float - 1.0);
    q.awq_to_rtn_error_ratio = report_->AwqToRtnErrorRatio();
    q.tensor_parallel = ServingCompatibility(config, ResolvedFormat());
    report_->SetQuality(q);
    Log(LogLevel::kInfo,
        absl::StrFormat("quality on %s (%d tokens): perplexity float %.3f, quantized %.3f "
                        "(%+.2f %%); AWQ kept %.1f %% of round-to-nearest's output error",
                        q.source == "eval_text" ? options_.eval_text : "the held-out rows", tokens,
                        q.perplexity_float, q.perplexity_quantized, q.perplexity_increase_percent,
                        100.0 * q.awq_to_rtn_error_ratio));
    if (observer_ != nullptr) observer_->OnQuality(q);
    quality_ = q;
    EndPhase(Phase::kEvaluating);
    if (options_.max_perplexity_increase_percent.has_value() &&
        !(q.perplexity_increase_percent <= *options_.max_perplexity_increase_percent)) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "quality check failed: the quantized model's perplexity %.3f is %.2f %% above the float "
          "model's %.3f on %d %s tokens, more than max_perplexity_increase_percent %.2f; nothing "
          "was written",
          q.perplexity_quantized, q.perplexity_increase_percent, q.perplexity_float, tokens,
          q.source == "eval_text" ? "eval_text" : "held-out",
          *options_.max_perplexity_increase_percent));
    }
  }
  return CheckCancel();
}

absl::StatusOr<QuantizeResult> PipelineRun::Export() {
  Report(Phase::kExporting, source_.config.num_hidden_layers, source_.config.num_hidden_layers,
         kQuantizeEnd);
  QUANTD_RETURN_IF_ERROR(writes_->Drain());
  const absl::Time sync_start = absl::Now();
  QUANTD_RETURN_IF_ERROR(exporter_->FinishWeights());  // on disk (fsync) before the report
  const double sync_seconds = absl::ToDoubleSeconds(absl::Now() - sync_start);
  LogDeviceMemory("at the end");
  report_->SetOverlapSeconds({{"layer_read_background", layer_read_background_},
                              {"layer_read_wait", layer_read_wait_},
                              {"write_background", writes_->busy_seconds()},
                              {"write_wait", writes_->wait_seconds()},
                              {"weights_fsync", sync_seconds}});
  EndPhase(Phase::kExporting);  // the report carries the time up to here
  QUANTD_RETURN_IF_ERROR(exporter_->AddFile("quant_report.json", report_->Serialize()));
  const absl::Time commit_start = absl::Now();
  QUANTD_ASSIGN_OR_RETURN(std::vector<Artifact> artifacts,
                          exporter_->Commit(options_.artifact_digests));
  int64_t bytes = 0;
  for (const Artifact& a : artifacts) bytes += a.size_bytes;
  Log(LogLevel::kInfo,
      absl::StrFormat("exported %d files (%.1f MiB): writes %.2fs in the background (waited "
                      "%.2fs), fsync %.2fs, commit%s %.2fs",
                      artifacts.size(), static_cast<double>(bytes) / (1024.0 * 1024.0),
                      writes_->busy_seconds(), writes_->wait_seconds(), sync_seconds,
                      options_.artifact_digests ? " and SHA-256" : "",
                      absl::ToDoubleSeconds(absl::Now() - commit_start)));
  QuantizeResult result;
  result.output_dir = exporter_->output_dir();
  result.report_path = result.output_dir + "/quant_report.json";
  result.quality = quality_;
  for (const Artifact& a : artifacts) {
    if (observer_ != nullptr) observer_->OnArtifact(a);
  }
  result.artifacts = std::move(artifacts);
  progress_->Finish();  // the checkpoint is in place: nothing is left to resume
  Report(Phase::kExporting, source_.config.num_hidden_layers, source_.config.num_hidden_layers, 1.0,
         absl::ZeroDuration());
  return result;
}

absl::StatusOr<QuantizeResult> PipelineRun::Execute() {
  absl::StatusOr<QuantizeResult> result = [&]() -> absl::StatusOr<QuantizeResult> {
    QUANTD_RETURN_IF_ERROR(Load());
    QUANTD_RETURN_IF_ERROR(Calibrate());
    QUANTD_RETURN_IF_ERROR(QuantizeLayers());
    QUANTD_RETURN_IF_ERROR(Evaluate());
    return Export();
  }();
  if (!result.ok()) {
    // Layers already quantized are still worth keeping: finish their writes (at most
    // kMaxPendingWrites + 1) unless the writes are what failed.
    if (writes_ != nullptr && progress_ != nullptr) (void)writes_->Drain();
    writes_.reset();  // drops queued writes, waits for the one running
    const int kept = progress_ != nullptr ? progress_->layers_durable() : 0;
    if (exporter_ != nullptr && kept > 0) {
      exporter_->Abandon();
      Log(LogLevel::kInfo,
          absl::StrCat("progress kept: ", kept, " of ", source_.config.num_hidden_layers,
                       " layers are finished in ", options_.output_dir,
                       "; run the same quantization into it again to resume from layer ", kept,
                       " (quantize-awq --restart discards them)"));
    } else if (exporter_ != nullptr) {
      exporter_->Abort();
    }
  }
  return result;
}

}  // namespace

QuantFormat QuantizeOptions::quant_format() const {
  return {format, bits, group_size, zero_point, output_dtype, scale_dtype};
}

absl::StatusOr<QuantizeResult> Quantize(const QuantizeOptions& options, EngineObserver* observer,
                                        const CancellationToken* cancel) {
  PipelineRun run(options, observer, cancel);
  return run.Execute();
}

}  // namespace quantd::engine
