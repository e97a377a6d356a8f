#include "quantd/engine/model_support.h"

#include "model/memory_geometry.h"
#include "model/model_config.h"
#include "model/registry.h"

namespace quantd::engine {

absl::Status CheckModelConfigSupported(const nlohmann::json& config, std::string_view path) {
  return ParseModelConfig(config, path).status();
}

absl::StatusOr<memory_plan::LayerGeometry> ModelMemoryGeometry(const nlohmann::json& config,
                                                               std::string_view path) {
  absl::StatusOr<ModelConfig> parsed = ParseModelConfig(config, path);
  if (!parsed.ok()) return parsed.status();
  return MemoryGeometryOf(*parsed, parsed->compute_dtype);
}

std::vector<std::string> SupportedModelClasses() {
  std::vector<std::string> out;
  for (const ArchitectureSpec* a : SupportedArchitectures()) out.push_back(a->hf_class);
  return out;
}

}  // namespace quantd::engine
