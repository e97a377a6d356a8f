// ArchitectureSpec: one record per supported decoder family, defined in its own file under
// model/families/ and listed in model/registry.cc. A record is everything that differs between
// families: how its config.json is read (its forward-pass features go into ModelConfig), which
// tensors a decoder layer holds (fused source Linears included), and AutoAWQ's scaling groups for
// it. The rest of the engine reads the record and the ModelConfig features; no other file switches
// over families. This header also derives the checkpoint's tensor names and shapes from a record.
#ifndef QUANTD_ENGINE_MODEL_ARCHITECTURE_H_
#define QUANTD_ENGINE_MODEL_ARCHITECTURE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "io/json_file.h"
#include "model/layer_weights.h"
#include "model/model_config.h"
#include "model/scaling_group.h"

namespace quantd::engine {

// A canonical Linear that a fused source Linear holds, stacked by output rows.
struct LinearPart {
  std::string name;  // canonical, relative to the layer: "self_attn.q_proj"
  int64_t rows = 0;
};

// One source tensor of a decoder layer (a Linear's weight, with its bias, or a float tensor),
// named relative to the layer without ".weight".
struct LayerTensorSpec {
  std::string name;               // "self_attn.q_proj", "self_attn.qkv_proj", "input_layernorm"
  std::vector<int64_t> shape;     // of name + ".weight"
  bool linear = false;            // a quantized Linear (else a float tensor, written as is)
  bool bias = false;              // name + ".bias" [out] too
  std::vector<LinearPart> parts;  // a fused Linear: the canonical Linears it stacks; else empty
};

struct ArchitectureSpec {
  const char* name;                      // short key for docs and tests: "llama", "gemma2", ...
  const char* hf_class;                  // config.json "architectures"[0]: "Gemma2ForCausalLM"
  std::vector<std::string> model_types;  // config.json "model_type" values it accepts
  const char* autoawq_class;             // AutoAWQ 0.2.9's class for it ("" where AutoAWQ has none)
  bool tied_embeddings_by_default;       // transformers' default of tie_word_embeddings
  // Its activations exceed float16's range (Gemma): computed in float32 when the checkpoint is
  // float16, exported in bfloat16 unless float16 is asked for.
  bool float16_overflows;
  // The auto_map "AutoModelForCausalLM" entry of checkpoints that predate the family's
  // integration into transformers (whose remote code is the native class), or "" (auto_map
  // refused).
  const char* native_remote_code;
  // Reads the family's fields of config.json into `config`, after the common ones (geometry,
  // dtype, RoPE; layer_attention holds one full-attention entry per layer).
  absl::Status (*parse)(const JsonFields& fields, ModelConfig* config);
  // The decoder layer's source tensors, in Hugging Face state-dict order.
  std::vector<LayerTensorSpec> (*layer_tensors)(const ModelConfig& config);
  // AutoAWQ's scaling groups of a layer, in its order.
  std::vector<ScalingGroup> (*scaling_groups)(const ModelConfig& config);
};

// A quantized Linear of a layer in the engine's (canonical, unfused) form.
struct LinearSpec {
  std::string name;    // canonical: "self_attn.q_proj"
  std::string source;  // the checkpoint's Linear holding it: itself or a fused one
  int64_t out = 0, in = 0;
  bool bias = false;
  bool clip = false;  // AutoAWQ's clip search covers it (decided on the source name)
};

// The quantized Linears of a layer, canonical, in state-dict order.
std::vector<LinearSpec> LayerLinears(const ModelConfig& config);

// The float tensors of a layer (norms), in state-dict order.
std::vector<LayerTensorSpec> LayerFloatTensors(const ModelConfig& config);

// Moves the layer's float tensors (LayerFloatTensors order) out of `layer`.
std::vector<NamedTensor> TakeFloatTensors(const ModelConfig& config, LayerWeights* layer);

// AutoAWQ skips the clip search for Linears whose name contains "q_", "k_", "query", "key" or
// "Wqkv" ("due to qk bmm"); a fused qkv_proj matches none, so it is clipped whole.
bool AutoAwqClips(std::string_view linear_name);

// A named tensor with its expected shape.
struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
};

// "model.layers.<layer>.<suffix>".
std::string LayerTensorName(int layer, std::string_view suffix);

// The float tensors one layer of the source checkpoint holds, in Hugging Face state-dict order.
std::vector<TensorSpec> SourceLayerTensors(const ModelConfig& config, int layer);

// Embedding, final norm and (untied models) lm_head.
std::vector<TensorSpec> SourceGlobalTensors(const ModelConfig& config);

inline constexpr char kEmbedTokensName[] = "model.embed_tokens.weight";
inline constexpr char kFinalNormName[] = "model.norm.weight";
inline constexpr char kLmHeadName[] = "lm_head.weight";

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_MODEL_ARCHITECTURE_H_
