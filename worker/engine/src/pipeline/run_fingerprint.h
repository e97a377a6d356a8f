// RunFingerprint: what determines the checkpoint a run writes, as named parts, so that a resumed
// run can check it continues the same computation and say exactly what changed when it does not:
//   engine       the engine's version and a SHA-256 of the running executable (its numerics)
//   backend      the backend the run computes on ("cpu", "cuda": their bits differ)
//   option NAME  every option that changes the output or the calibration (bits, group_size,
//                zero_point, version, modules_to_not_convert, dtype, num_calib, max_seq_len, seed,
//                apply_chat_template, system_prompt — the prompt as its SHA-256)
//   model FILE   config.json and the index by content; each weights file by size and a SHA-256
//                of its safetensors header (names, dtypes, shapes, offsets)
//   model tensors outside the layers  embedding, final norm, lm_head by content
//   calibration  the token blocks the layers run (count × length and a SHA-256 of the ids)
// The tensors of each finished layer are fingerprinted on their own (LayerTensorsDigest), as read
// from the source and as written to the staged output, in the resume journal's layer records.
#ifndef QUANTD_ENGINE_PIPELINE_RUN_FINGERPRINT_H_
#define QUANTD_ENGINE_PIPELINE_RUN_FINGERPRINT_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "io/safetensors_file.h"
#include "nlohmann/json.hpp"
#include "quantd/engine/quantize.h"

namespace quantd::engine {

struct RunFingerprint {
  std::vector<std::pair<std::string, std::string>> parts;  // in a fixed order

  // Why `this` (the earlier run) and `now` differ, in words naming the first differing part
  // ("the option group_size differs (was 64, now 128)"); empty when they are equal.
  std::string DifferenceFrom(const RunFingerprint& now) const;

  nlohmann::json ToJson() const;
  static absl::StatusOr<RunFingerprint> FromJson(const nlohmann::json& json);
};

// The "calibration" part: count × length of the token blocks and a SHA-256 of their ids.
std::string CalibrationDigest(const std::vector<std::vector<int32_t>>& blocks);

// The fingerprint of a run of `options` on `backend` over the weights files `model_files` (the
// model's safetensors files, opened) with the calibration part `calibration`.
absl::StatusOr<RunFingerprint> ComputeRunFingerprint(
    const QuantizeOptions& options, std::string_view backend,
    const std::vector<const SafetensorsFile*>& model_files, const std::string& calibration);

// SHA-256 over every tensor of decoder layer `layer` ("model.layers.<layer>.*") in `files`, in
// name order: each tensor's name, dtype, shape and bytes. Drops the pages it read from the
// mappings.
std::string LayerTensorsDigest(const std::vector<const SafetensorsFile*>& files, int layer);
// The same over every tensor outside the decoder layers (embedding, final norm, lm_head).
std::string NonLayerTensorsDigest(const std::vector<const SafetensorsFile*>& files);

// The engine's build: its version and a SHA-256 of the running executable (computed once).
const std::string& EngineBuildId();

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_PIPELINE_RUN_FINGERPRINT_H_
