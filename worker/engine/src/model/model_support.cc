#include "quantd/engine/model_support.h"

#include "model/model_config.h"
#include "model/registry.h"

namespace quantd::engine {

absl::Status CheckModelConfigSupported(const nlohmann::json& config, std::string_view path) {
  return ParseModelConfig(config, path).status();
}

std::vector<std::string> SupportedModelClasses() {
  std::vector<std::string> out;
  for (const ArchitectureSpec* a : SupportedArchitectures()) out.push_back(a->hf_class);
  return out;
}

}  // namespace quantd::engine
