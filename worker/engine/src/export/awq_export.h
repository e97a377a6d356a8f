// AwqExporter: writes the output directory of a quantization (spec/output-format.md) — the AutoAWQ
// GEMM checkpoint, config.json with quantization_config, the source's generation and tokenizer
// files, the seed script's quant_config.json and modules_to_not_convert.txt, and any extra file
// the pipeline adds (quant_report.json). Everything is written under temporary names and renamed
// into place by Commit(); without Commit() (an error, a cancellation) the temporaries are removed
// and the output directory holds no new final name. model_dir is only read.
//
// Use from the pipeline:
//   auto exporter = AwqExporter::Create(config, ExportOptions::From(options, config));
//   for each layer: exporter->WriteLinear(layer, "self_attn.q_proj", packed) ... and
//                   exporter->WriteLayerFloats(layer, norms)
//   exporter->WriteFloat(kEmbedTokensName, embedding); ... kFinalNormName, kLmHeadName (untied)
//   exporter->AddFile("quant_report.json", report);
//   auto artifacts = exporter->Commit();
#ifndef QUANTD_ENGINE_EXPORT_AWQ_EXPORT_H_
#define QUANTD_ENGINE_EXPORT_AWQ_EXPORT_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/tensor.h"
#include "export/checkpoint_writer.h"
#include "io/staged_files.h"
#include "model/layer_weights.h"
#include "model/model_config.h"
#include "quantd/engine/quantize.h"

namespace quantd::engine {

struct ExportOptions {
  std::string model_dir;   // Source: config.json, generation and tokenizer files.
  std::string output_dir;  // Created when missing.
  int bits = 4;
  int group_size = 128;
  bool zero_point = true;
  std::vector<std::string> modules_to_not_convert = {"lm_head"};
  OutputDtype output_dtype = OutputDtype::kFloat16;
  int64_t max_shard_bytes = kDefaultMaxShardBytes;
  // Keep the weight temporaries an interrupted run left in output_dir when their layout is this
  // run's (a resumed run; see ReusedStagedWeights, MarkLayerWritten).
  bool reuse_staged = false;

  // `config` resolves OutputDtype::kAuto (ResolveOutputDtype).
  static ExportOptions From(const QuantizeOptions& options, const ModelConfig& config);
};

// The output dtype of a run: as asked, or for kAuto float16 unless the family's activations
// overflow float16 (ArchitectureSpec::float16_overflows), then bfloat16.
OutputDtype ResolveOutputDtype(const ModelConfig& config, OutputDtype requested);

// DType of the float (non-quantized) tensors (kAuto is resolved before: float16).
DType FloatDTypeOf(OutputDtype dtype);

// A quantized Linear in AutoAWQ GEMM form (spec/output-format.md).
struct PackedLinear {
  std::vector<int32_t> qweight;  // [in, out / 8], 8 codes per word, AWQ order
  std::vector<int32_t> qzeros;   // [in / G, out / 8]
  Tensor scales;                 // [in / G, out], written as float16
  std::optional<Tensor> bias;    // [out], written as float16
};

// True when a Linear (full module name, e.g. "model.layers.0.mlp.down_proj") stays in float
// because an entry of modules_to_not_convert is a substring of it, as vLLM and SGLang match.
bool IsNotConverted(std::string_view module,
                    const std::vector<std::string>& modules_to_not_convert);

// The output state dict, in Hugging Face order (see awq_export.cc).
std::vector<PlannedTensor> PlanAwqStateDict(const ModelConfig& config,
                                            const ExportOptions& options);

// modules_to_not_convert of the output: the caller's, plus in MoE models the full name of every
// router and shared_expert_gate (kept float). vLLM's AWQ / AWQ-Marlin configs skip a Linear whose
// prefix contains an entry (docs/moe.md); without them a loader that builds the router with the
// quantization config would look for AWQ tensors the checkpoint does not have.
std::vector<std::string> OutputModulesToNotConvert(const ModelConfig& config,
                                                   const ExportOptions& options);

// config.json of the output: the source's fields plus quantization_config, the output dtype and
// use_cache false.
nlohmann::json MakeOutputConfig(const ModelConfig& config, const ExportOptions& options);

// The seed's quant_config.json (indent 2, keys in its order, trailing newline).
std::string MakeQuantConfigJson(const ExportOptions& options);

// Files copied from the source directory when present.
extern const char* const kCopiedModelFiles[];

class AwqExporter {
 public:
  static absl::StatusOr<std::unique_ptr<AwqExporter>> Create(const ModelConfig& config,
                                                             const ExportOptions& options);
  ~AwqExporter();

  const std::vector<PlannedTensor>& state_dict() const { return weights_->state_dict(); }
  const std::string& output_dir() const { return staged_.dir(); }

  // One quantized Linear of a layer, by its name in the checkpoint ("self_attn.q_proj", or a fused
  // "self_attn.qkv_proj" whole).
  absl::Status WriteLinear(int layer, std::string_view linear, const PackedLinear& packed);
  // A Linear left in float (listed in modules_to_not_convert).
  absl::Status WriteFloatLinear(int layer, std::string_view linear, const LinearWeights& weights);
  // The float tensors of a layer (its norms, named relative to the layer without ".weight"), in
  // the output dtype.
  absl::Status WriteLayerFloats(int layer, const std::vector<NamedTensor>& tensors);
  // Any float tensor of the plan by full name (embedding, final norm, lm_head).
  absl::Status WriteFloat(std::string_view name, const Tensor& tensor);
  // Part of one from a source tensor's raw bytes in `source` dtype
  // (CheckpointWriter::WriteFloatFrom).
  absl::Status WriteFloatFrom(std::string_view name, int64_t first, DType source,
                              absl::Span<const uint8_t> bytes);

  // An extra file of the output directory, committed with the rest.
  absl::Status AddFile(std::string_view name, std::string_view content);

  // Starts writing the weights written so far to disk in the background, so that
  // FinishWeights() has little left to wait for.
  void StartWriteback() const;

  // Fails (InternalError naming a tensor) when a planned tensor was not written; otherwise puts
  // the weights on disk (fsync). Commit() does it when not done yet.
  absl::Status FinishWeights();

  // Stages config.json, the copied files, quant_config.json and modules_to_not_convert.txt, checks
  // every planned tensor was written, renames everything into place, removes stale checkpoint
  // files of an earlier run, and returns every final file with its size and (with `digests`)
  // SHA-256.
  absl::StatusOr<std::vector<Artifact>> Commit(bool digests = true);

  // Removes every temporary; the output directory keeps no new final name.
  void Abort();
  // Closes the files and keeps every temporary: an interrupted run leaves its progress for the
  // next one to resume (the output directory still has no new final name).
  void Abandon();

  // Resuming: whether every weight temporary was kept from an earlier run (reuse_staged), and
  // counting a finished layer's tensors in them as written.
  bool ReusedStagedWeights() const;
  absl::Status MarkLayerWritten(int layer);
  // The weight temporaries' paths (shards, in order).
  std::vector<std::string> StagedWeightPaths() const;

 private:
  AwqExporter(const ModelConfig& config, const ExportOptions& options);
  absl::Status StageSideFiles();
  absl::Status RemoveStaleCheckpointFiles() const;

  ModelConfig config_;
  ExportOptions options_;
  StagedFiles staged_;
  std::unique_ptr<CheckpointWriter> weights_;
  bool weights_finished_ = false;
  bool committed_ = false;
};

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_EXPORT_AWQ_EXPORT_H_
