// DurableProgress: makes a run's finished layers survive the run, and resumes from them.
//
// As each layer finishes, its packed tensors are written into the output's staged weight files
// (the `.model*.safetensors.quantd-tmp` temporaries the exporter fills) and made durable, then a
// record of the layer goes into the resume journal (pipeline/resume_journal.h) with the digests
// of its tensors as read from the model and as written. The journal's header carries the run's
// fingerprint (pipeline/run_fingerprint.h).
//
// A new run into the same output_dir (a requeued attempt, a rerun of the same command) finds
// the journal and checks it: the fingerprint must equal this run's (else it starts over and says
// which part differs), and every finished layer's source tensors and staged output tensors must
// still have their recorded digests (else it continues from the first layer that differs, since
// the layers before it are the same computation). The pipeline then replays only the float
// forward of the finished layers — AWQ feeds layer i + 1 the float layer i's output (spec/awq.md
// §2.3), so that forward rebuilds its input exactly — and quantizes the rest; the checkpoint is
// byte-identical to an uninterrupted run's on the same backend.
//
// The output directory is locked (flock) while a run uses it, so a second engine on the same
// output_dir (a requeued attempt whose predecessor is still stopping) waits for the first.
//
// Threading: Prepare/Begin/StagedLayer/Finish on the pipeline's thread, NoteSourceLayer on the
// layer-reading thread, CommitLayer on the writer thread (in layer order).
#ifndef QUANTD_ENGINE_PIPELINE_DURABLE_PROGRESS_H_
#define QUANTD_ENGINE_PIPELINE_DURABLE_PROGRESS_H_

#include <condition_variable>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "backend/backend.h"
#include "export/awq_export.h"
#include "io/checkpoint_reader.h"
#include "io/safetensors_file.h"
#include "pipeline/resume_journal.h"
#include "pipeline/run_fingerprint.h"
#include "quantd/engine/quantize.h"

namespace quantd::engine {

class DurableProgress {
 public:
  using LogFn = std::function<void(LogLevel, const std::string&)>;

  // Locks output_dir when it exists (waiting up to a minute for another run to let go of it;
  // else Begin locks it once the exporter has created it) and decides where this run starts:
  // `resume_layer()` layers are kept from an earlier run, or none. With options.restart an earlier
  // run's progress is discarded. Logs what it decided and why.
  static absl::StatusOr<std::unique_ptr<DurableProgress>> Prepare(
      const QuantizeOptions& options, const SourceModel& source, std::string_view backend,
      const std::vector<std::vector<int32_t>>& blocks, const LogFn& log);
  ~DurableProgress();

  // Layers finished by an earlier run that this one keeps (0: it starts from the beginning).
  int resume_layer() const { return resume_layer_; }
  // Seconds spent checking the earlier run's layers (digests of their tensors).
  double verify_seconds() const { return verify_seconds_; }
  // The report's "resume" entry.
  nlohmann::json ReportEntry(double replay_seconds) const;

  // Once the exporter exists (created with reuse_staged = resume_layer() > 0): counts the kept
  // layers as written, opens the staged weight files and the journal.
  absl::Status Begin(AwqExporter& exporter);

  // The layer-reading thread read `layer`: fingerprints its source tensors for the journal, in
  // the background (CommitLayer waits for it).
  void NoteSourceLayer(int layer);

  // The writer thread wrote `layer`'s tensors: makes them durable and records the layer.
  absl::Status CommitLayer(int layer, nlohmann::json report,
                           std::map<std::string, std::vector<float>> norms);
  // Layers recorded durably (kept ones included).
  int layers_durable() const;

  // A kept layer: its report entry, and its quantized form read back from the staged files (the
  // packed tensors as written, the scaled norms from the journal), for evaluation.
  const nlohmann::json& KeptReportEntry(int layer) const { return kept_[layer].report; }
  absl::StatusOr<QuantizedLayer> KeptLayer(const ModelConfig& config, int layer) const;

  // The checkpoint is committed: the journal goes.
  void Finish();

 private:
  DurableProgress(const QuantizeOptions& options, const LogFn& log)
      : options_(options), log_(log) {}
  absl::Status Lock();
  absl::Status OpenSource(const SourceModel& source);
  // The staged weight temporaries of this run's export plan, opened for reading.
  absl::Status OpenStaged(const std::vector<std::string>& paths);
  // Checks the kept layers' digests; returns the first layer that differs (or their count).
  int VerifyKeptLayers(const std::vector<JournalLayer>& layers, std::string* why);

  const QuantizeOptions& options_;
  LogFn log_;
  int lock_fd_ = -1;
  int layers_total_ = 0;
  int resume_layer_ = 0;
  double verify_seconds_ = 0.0;
  std::string restart_reason_;  // why an earlier run's progress was (partly) discarded
  std::shared_future<absl::StatusOr<RunFingerprint>> fingerprint_;
  std::vector<JournalLayer> kept_;
  std::vector<std::unique_ptr<SafetensorsFile>> source_files_;
  std::vector<std::unique_ptr<SafetensorsFile>> staged_files_;
  std::vector<int> staged_fds_;  // for fdatasync
  std::unique_ptr<ResumeJournal> journal_;

  mutable std::mutex mu_;
  std::condition_variable source_ready_;
  std::map<int, std::string> source_digests_;  // guarded by mu_
  int durable_ = 0;                            // guarded by mu_
  // Digests of source layers being computed (NoteSourceLayer); guarded by mu_. Last: destroyed
  // (waited for) first.
  std::vector<std::future<void>> source_digesting_;
};

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_PIPELINE_DURABLE_PROGRESS_H_
