// config.json parsing on arbitrary text, and what the engine derives from an accepted config (the
// tensors it expects, the Linear shapes).
#include <cstdint>
#include <string_view>

#include "awq/scaling_groups.h"
#include "model/architecture.h"
#include "model/model_config.h"
#include "nlohmann/json.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const nlohmann::json json = nlohmann::json::parse(
      std::string_view(reinterpret_cast<const char*>(data), size), nullptr, false);
  if (json.is_discarded()) return 0;
  auto config = quantd::engine::ParseModelConfig(json, "config.json");
  if (!config.ok()) return 0;
  (void)quantd::engine::SourceGlobalTensors(*config);
  if (config->num_hidden_layers > 0) (void)quantd::engine::SourceLayerTensors(*config, 0);
  (void)quantd::engine::LayerLinears(*config);
  (void)quantd::engine::LayerFloatTensors(*config);
  (void)quantd::engine::ScalingGroupsOf(*config);
  return 0;
}
