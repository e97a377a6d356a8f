// What Gemma 2 and Gemma 3 text models share in config.json: the (1 + w) RMSNorm, GeGLU with tanh
// GELU, four norms per layer, embeddings × √hidden, 1/√query_pre_attn_scalar attention scaling and
// the optional soft-capping of attention scores and final logits.
#ifndef QUANTD_ENGINE_MODEL_FAMILIES_GEMMA_FEATURES_H_
#define QUANTD_ENGINE_MODEL_FAMILIES_GEMMA_FEATURES_H_

#include "absl/status/status.h"
#include "io/json_file.h"
#include "model/model_config.h"

namespace quantd::engine {

absl::Status ParseGemmaFeatures(const JsonFields& f, ModelConfig* config);

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_MODEL_FAMILIES_GEMMA_FEATURES_H_
