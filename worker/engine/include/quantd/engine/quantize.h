// The AWQ engine's public API: the only header the worker daemon, quantize-awq and the benchmarks
// include. Everything else under worker/engine/src is private to the engine.
//
// Quantize() reads a Hugging Face model directory, calibrates on a JSON-lines file, runs AutoAWQ's
// search layer by layer (spec: AutoAWQ 0.2.9, see docs/engine.md) and writes an AutoAWQ GEMM or a
// compressed-tensors checkpoint. It measures the quantized model's quality on held-out text
// (docs/quality.md), reports progress, log lines, the quality and artifacts to an EngineObserver
// as it goes, and stops between scaling groups once its CancellationToken is cancelled.
#ifndef QUANTD_ENGINE_QUANTIZE_H_
#define QUANTD_ENGINE_QUANTIZE_H_

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "quantd/engine/format_options.h"

namespace quantd::engine {

// The seed script's AWQ_CALIB_SYSTEM_PROMPT, the default system message of chat-wrapped
// calibration.
extern const char kSeedSystemPrompt[];

// What a calibration file must hold, and how to make one: appended to the errors about a missing
// or unusable calib_jsonl.
inline constexpr char kCalibJsonlFormatHint[] =
    "a calibration file is JSON lines, one object per line: {\"text\": \"...\"} (chat-wrapped "
    "and tokenized with the model's tokenizer) or {\"input_ids\": [...]} (token ids used as "
    "they are); `quantize-awq make-calib TEXT_FILE > calib.jsonl` makes one from a plain text "
    "file, one row per paragraph";

// Which implementation runs the layer math. kAuto = CUDA when a GPU is present, else CPU.
enum class BackendKind { kAuto, kCpu, kCuda };

// Settings of one quantization. Defaults are the seed script's constants.
struct QuantizeOptions {
  std::string model_dir;
  std::string output_dir;
  std::string calib_jsonl;
  int num_calib = 8192;
  int max_seq_len = 2048;
  int bits = 4;
  int group_size = 128;          // 32, 64, 128 or kPerChannelGroup (-1)
  bool zero_point = true;        // false: symmetric (compressed-tensors only)
  std::string version = "gemm";  // AutoAWQ's version key; only "gemm" is accepted.
  CheckpointFormat format = CheckpointFormat::kAwqGemm;
  // Entries are substrings of module names or "re:<regex>" (format_options.h).
  std::vector<std::string> modules_to_not_convert = {"lm_head"};
  bool apply_chat_template = true;
  // A model whose chat template cannot be loaded or parsed fails the run (as the seed's
  // transformers call would raise) unless this opts in to wrapping the texts as ChatML instead.
  bool chat_template_fallback = false;
  std::string system_prompt = kSeedSystemPrompt;  // "" = no system message.
  uint64_t seed = 42;
  OutputDtype output_dtype = OutputDtype::kAuto;
  std::optional<OutputDtype> scale_dtype;  // Unset: the format's default (ScaleDtypeOf).
  // Held-out text for the quality report's perplexities; empty: a slice of calib_jsonl is held
  // out of calibration instead (calib/calibration.h).
  std::string eval_text;
  // false: every row calibrates, as AutoAWQ's do (comparisons with AutoAWQ's outputs); without
  // eval_text the quality report then has no perplexity. Not a job option: jobs always report.
  bool hold_out = true;
  // Fail (FailedPrecondition, with the figures) when the quantized model's perplexity exceeds the
  // float model's by more than this many percent. Unset: never.
  std::optional<double> max_perplexity_increase_percent;
  // AutoAWQ under transformers 5 leaked a KV cache into the attention group's trials (only
  // q_proj's error is measured; LayerQuantSettings). For comparisons with AutoAWQ's outputs only.
  bool attention_trials_use_float_kv = false;
  std::string dump_calib;  // Optional: write the calibration blocks here as JSON.
  BackendKind backend = BackendKind::kAuto;
  // GPUs the calibration is split across (data-parallel: every GPU takes the same decisions;
  // docs/engine.md, "Multi-GPU"): devices 0..gpus-1, or as many threads on the CPU backend.
  int gpus = 1;
  // SHA-256 of every output file in the artifacts (one more read of the whole output after the
  // last file is written); off, Artifact::sha256 stays empty. quantize-awq turns it off unless
  // it emits events (the daemon's mode).
  bool artifact_digests = true;
  // Finished layers are kept in output_dir as they complete (a resume journal beside the staged
  // output files); a run into an output_dir that holds an interrupted run's progress continues
  // from it when it is the same computation (docs/engine.md, "Resume"). `restart` discards such
  // progress instead.
  bool restart = false;
  // Testing only (no flag): MoE models keep AutoAWQ's behaviour of leaving the router's (and
  // shared_expert_gate's) input columns unscaled, so the quality test can measure what quantd's
  // correction is worth. Off, they follow the norm's scales and routing is unchanged by scaling.
  bool moe_router_unscaled_for_testing = false;

  QuantFormat quant_format() const;
};

// Phases of a run, in order.
enum class Phase { kLoading, kCalibrating, kQuantizing, kEvaluating, kExporting };
const char* PhaseName(Phase phase);

struct Progress {
  Phase phase = Phase::kLoading;
  int layers_done = 0;
  int layers_total = 0;
  double fraction = 0.0;              // Whole run, 0..1, monotone.
  std::optional<absl::Duration> eta;  // Unset while unknown.
  int64_t tokens_per_layer = 0;       // Calibration tokens each layer runs (0 until known).
  // The layer this run resumed at (the layers before it were finished by an interrupted run and
  // kept); 0 when it started from the beginning.
  int resumed_at_layer = 0;
};

enum class LogLevel { kDebug, kInfo, kWarning, kError };

// vLLM's serving of the checkpoint at one tensor-parallel size (docs/quality.md).
struct TensorParallelFit {
  int size = 1;
  bool servable = false;
  std::vector<std::string> kernels;  // vLLM kernels that implement every quantized Linear
  std::string reason;                // why not, when not servable
};

// The quality report's headline figures (quant_report.json "quality" holds them all).
struct QualitySummary {
  std::string source;  // "held_out": a slice of calib_jsonl; "eval_text": the given file
  int64_t tokens_scored = 0;
  double perplexity_float = 0.0;
  double perplexity_quantized = 0.0;
  double perplexity_increase_percent = 0.0;
  // What the AWQ search gained: Σ of the scaling groups' output error with the chosen scales over
  // Σ with round-to-nearest weights (< 1: AWQ reduced the error), over all layers.
  double awq_to_rtn_error_ratio = 0.0;
  std::vector<TensorParallelFit> tensor_parallel;  // sizes 1, 2, 4, 8
};

// A file of the finished checkpoint.
struct Artifact {
  std::string path;
  int64_t size_bytes = 0;
  std::string sha256;  // Lower-case hex.
};

// Receives what happens during Quantize(). Called from the thread that runs Quantize().
class EngineObserver {
 public:
  virtual ~EngineObserver() = default;
  virtual void OnProgress(const Progress& progress) {}
  virtual void OnLog(LogLevel level, const std::string& message) {}
  virtual void OnArtifact(const Artifact& artifact) {}
  // After the evaluation, before the perplexity threshold is checked (a job failing it still
  // reports its figures).
  virtual void OnQuality(const QualitySummary& quality) {}
};

// Cancels a running Quantize() from any thread. The engine checks it between scaling groups and
// returns absl::CancelledError, leaving no file under a final name in output_dir (finished
// layers stay, as temporaries, for a later run to resume).
class CancellationToken {
 public:
  void Cancel() { cancelled_.store(true, std::memory_order_relaxed); }
  bool cancelled() const { return cancelled_.load(std::memory_order_relaxed); }

 private:
  std::atomic<bool> cancelled_{false};
};

// What a successful run produced.
struct QuantizeResult {
  std::string output_dir;
  std::vector<Artifact> artifacts;
  std::string report_path;                // quant_report.json
  std::optional<QualitySummary> quality;  // unset when there was nothing held out to score
};

// Runs the whole pipeline. Errors are canonical: InvalidArgument for bad inputs (the message names
// the file, field or argument and what was expected), FailedPrecondition for unsupported models,
// ResourceExhausted for out of memory, Cancelled after a cancellation.
absl::StatusOr<QuantizeResult> Quantize(const QuantizeOptions& options, EngineObserver* observer,
                                        const CancellationToken* cancel);

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_QUANTIZE_H_
