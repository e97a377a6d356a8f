// A model's decoder layer as the memory plan sees it (memory_plan.h): what the CUDA backend
// plans its token chunks with and what quantd's scheduler places jobs by, from one ModelConfig.
#ifndef QUANTD_ENGINE_MODEL_MEMORY_GEOMETRY_H_
#define QUANTD_ENGINE_MODEL_MEMORY_GEOMETRY_H_

#include "core/dtype.h"
#include "model/model_config.h"
#include "quantd/memory_plan/memory_plan.h"

namespace quantd::engine {

// `md`: the dtype the layer is computed in (the model's compute dtype).
memory_plan::LayerGeometry MemoryGeometryOf(const ModelConfig& config, DType md);

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_MODEL_MEMORY_GEOMETRY_H_
