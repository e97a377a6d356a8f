// Parsing of the JSON-lines events that quantize-awq writes to stdout with --events=jsonl
// (docs/engine-events.md), into the messages the worker sends to the server.
#ifndef QUANTD_WORKER_DAEMON_ENGINE_EVENTS_H_
#define QUANTD_WORKER_DAEMON_ENGINE_EVENTS_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "quantd/v1/job.pb.h"

namespace quantd::worker {

// A decoder layer the engine finished: what the worker's metrics need (docs/metrics.md).
struct LayerDone {
  int layer = 0;  // 1-based.
  int layers_total = 0;
  double seconds = 0;  // Since the previous layer ended (the first: since quantizing began).
  int64_t tokens = 0;  // Calibration tokens the layer ran.
  // Device memory of the engine process (CUDA backend only).
  std::optional<int64_t> gpu_memory_bytes;
  std::optional<int64_t> gpu_memory_peak_bytes;
};

// One engine event. Exactly one of the members is meaningful, as `kind` says.
struct EngineEvent {
  enum class Kind { kProgress, kLog, kArtifact, kResult, kLayer };
  Kind kind = Kind::kLog;
  v1::JobProgress progress;
  v1::LogLine log;
  v1::Artifact artifact;
  // kResult: SUCCEEDED, FAILED or CANCELLED, and for FAILED the error.
  v1::JobState result = v1::JOB_STATE_UNSPECIFIED;
  v1::JobError error;
  // kResult: the quality report, when the engine made one (its "quality" object).
  std::optional<v1::JobQuality> quality;
  LayerDone layer;
};

// Parses one line. INVALID_ARGUMENT (saying what is wrong) for a line that is not an event.
absl::StatusOr<EngineEvent> ParseEngineEvent(const std::string& line);

}  // namespace quantd::worker

#endif  // QUANTD_WORKER_DAEMON_ENGINE_EVENTS_H_
