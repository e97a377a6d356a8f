#include "model/memory_geometry.h"

namespace quantd::engine {

memory_plan::LayerGeometry MemoryGeometryOf(const ModelConfig& c, DType md) {
  memory_plan::LayerGeometry g;
  g.hidden_size = c.hidden_size;
  g.intermediate_size = c.intermediate_size;
  g.num_attention_heads = c.num_attention_heads;
  g.num_key_value_heads = c.num_key_value_heads;
  g.head_dim = c.head_dim;
  g.dtype_bytes = static_cast<int>(DTypeSize(md));
  if (c.moe.enabled()) {
    g.num_experts = c.moe.num_experts;
    g.experts_per_token = c.moe.experts_per_token;
    g.expert_intermediate_size = c.moe.expert_intermediate_size;
    g.shared_expert_intermediate_size = c.moe.shared_expert_intermediate_size;
  }
  return g;
}

}  // namespace quantd::engine
