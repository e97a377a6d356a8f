// Which models the engine can quantize, for callers outside it (quantd checks a job's config.json
// at submit time, so a job the engine would refuse never reaches a worker). Built as the small
// library quantd_engine_model (config parsing and the family registry, no BLAS, no CUDA).
#ifndef QUANTD_ENGINE_MODEL_SUPPORT_H_
#define QUANTD_ENGINE_MODEL_SUPPORT_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "quantd/memory_plan/memory_plan.h"

namespace quantd::engine {

// OK when the engine supports the model `config` (a config.json document; `path` names it in
// errors) describes; otherwise the engine's own error: an unknown architecture or model_type
// with the supported list, a multimodal checkpoint, a feature it does not implement, a malformed
// field.
absl::Status CheckModelConfigSupported(const nlohmann::json& config, std::string_view path);

// The decoder layer's geometry as the engine's memory plan sees it (its compute dtype, its experts),
// for placing a job of this model on a GPU; the errors of CheckModelConfigSupported.
absl::StatusOr<memory_plan::LayerGeometry> ModelMemoryGeometry(const nlohmann::json& config,
                                                               std::string_view path);

// The Hugging Face classes of the supported families, in the registry's order.
std::vector<std::string> SupportedModelClasses();

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_MODEL_SUPPORT_H_
