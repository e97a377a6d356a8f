// ResumeJournal: the durable record of a run's finished layers, `output_dir/.resume.quantd-tmp`
// (a temporary by the docs/engine-events.md convention, so a cancelled job's cleanup removes it).
// JSON lines, each appended with one write and made durable (fdatasync) before the next layer
// counts as done:
//   {"quantd_resume": 1, "layers_total": N, "fingerprint": [[name, value], ...]}
//   {"layer": i, "source": "<sha256>", "output": "<sha256>", "report": {...},
//    "norms": {"input_layernorm": "<base64 float32>", ...}}
// A layer's record is written only after its packed tensors are on disk in the staged output
// files: "source" fingerprints its tensors as read from the model, "output" as written to the
// staged files, "report" is its quant_report.json entry and "norms" the scaled norms in float32
// (what the dequantized layer needs when a resumed run evaluates perplexity). A torn last line
// (a crash during the write) is ignored.
#ifndef QUANTD_ENGINE_PIPELINE_RESUME_JOURNAL_H_
#define QUANTD_ENGINE_PIPELINE_RESUME_JOURNAL_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "pipeline/run_fingerprint.h"

namespace quantd::engine {

struct JournalLayer {
  int layer = 0;
  std::string source_digest;
  std::string output_digest;
  nlohmann::json report;
  std::map<std::string, std::vector<float>> norms;  // "input_layernorm", ...
};

struct JournalContents {
  int layers_total = 0;
  RunFingerprint fingerprint;
  std::vector<JournalLayer> layers;  // layers 0, 1, ... in order
};

class ResumeJournal {
 public:
  static std::string PathFor(const std::string& output_dir);

  // The journal of output_dir: NotFound when there is none; InvalidArgument (saying what) when it
  // cannot be read as one.
  static absl::StatusOr<JournalContents> Read(const std::string& output_dir);

  // Starts a new journal (replacing any), its header durable before this returns.
  static absl::StatusOr<std::unique_ptr<ResumeJournal>> Create(const std::string& output_dir,
                                                               const RunFingerprint& fingerprint,
                                                               int layers_total);
  // Continues the journal of output_dir (whose first `layers` records are kept): records after
  // them — a torn line included — are cut off first.
  static absl::StatusOr<std::unique_ptr<ResumeJournal>> Continue(const std::string& output_dir,
                                                                 int layers);

  static void Remove(const std::string& output_dir);

  ~ResumeJournal();
  ResumeJournal(const ResumeJournal&) = delete;
  ResumeJournal& operator=(const ResumeJournal&) = delete;

  // Appends a layer's record and makes it durable.
  absl::Status Add(const JournalLayer& layer);

 private:
  ResumeJournal(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  absl::Status AppendLine(const std::string& line);

  std::string path_;
  int fd_ = -1;
};

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_PIPELINE_RESUME_JOURNAL_H_
