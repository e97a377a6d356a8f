// What quantize-awq prints while the engine runs: human-readable lines (the seed script's style),
// or with --events=jsonl one JSON event per line on stdout (docs/engine-events.md) and the human
// lines on stderr.
#ifndef QUANTD_WORKER_QUANTIZE_AWQ_CONSOLE_OBSERVER_H_
#define QUANTD_WORKER_QUANTIZE_AWQ_CONSOLE_OBSERVER_H_

#include <cstdio>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "quantd/engine/quantize.h"

namespace quantd::quantize_awq {

class ConsoleObserver : public engine::EngineObserver {
 public:
  ConsoleObserver(bool events_jsonl, FILE* out, FILE* err)
      : events_(events_jsonl), out_(out), err_(err) {}

  void OnProgress(const engine::Progress& progress) override;
  void OnLog(engine::LogLevel level, const std::string& message) override;
  void OnArtifact(const engine::Artifact& artifact) override;
  // Kept for the result event (a failed threshold reports it too) and printed.
  void OnQuality(const engine::QualitySummary& quality) override;

  // A human line (stdout, or stderr in events mode).
  void Say(const std::string& line);
  // The last event: succeeded, failed (with the status) or cancelled.
  void Result(const absl::Status& status);

 private:
  void Event(const std::string& json);
  // The "layer" event after layer `p.layers_done` (docs/engine-events.md).
  void LayerEvent(const engine::Progress& p);

  bool events_;
  FILE* out_;
  FILE* err_;
  int last_layer_reported_ = -1;
  std::optional<engine::QualitySummary> quality_;
  absl::Time layer_start_;  // When the current layer began (the end of the previous one).
};

}  // namespace quantd::quantize_awq

#endif  // QUANTD_WORKER_QUANTIZE_AWQ_CONSOLE_OBSERVER_H_
