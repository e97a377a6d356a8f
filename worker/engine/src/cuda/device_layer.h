// One decoder layer on the GPU: its weights (float32 masters that AWQ scales and clips in place,
// plus model-dtype copies the GEMMs read) and the forward of its two inspected modules, mirroring
// backend/cpu/decoder_layer.h.
#ifndef QUANTD_ENGINE_CUDA_DEVICE_LAYER_H_
#define QUANTD_ENGINE_CUDA_DEVICE_LAYER_H_

#include <cuda_runtime.h>

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "core/dtype.h"
#include "cuda/device_buffer.h"
#include "cuda/gemm.h"
#include "cuda/kernels.h"
#include "cuda/source_upload.h"
#include "model/layer_weights.h"
#include "model/model_config.h"

namespace quantd::engine::cuda {

struct DeviceLinear {
  int64_t out = 0, in = 0;
  DeviceBuffer weight;   // float32 [out, in], values in md
  DeviceBuffer operand;  // md [out, in] (aliases nothing; for md = f32 unused)
  DeviceBuffer bias;     // float32 [out] or empty
  DeviceBuffer bias_op;  // md [out] copy for the GEMM bias epilogue (16-bit md only)
  bool has_bias = false;
  const void* op(DType md) const {
    return md == DType::kF32 ? weight.as<void>() : operand.as<void>();
  }
  const float* bias_ptr() const { return has_bias ? bias.f32() : nullptr; }
  const void* bias_op_ptr() const { return has_bias ? bias_op.as<void>() : nullptr; }
};

// A sparse MoE block's weights (model/moe_layout.h): the router and Qwen2-MoE's
// shared_expert_gate stay float (AWQ scales their columns, never quantizes them).
struct DeviceExpert {
  DeviceLinear gate, up, down;
};
struct DeviceMoe {
  DeviceLinear router;
  std::vector<DeviceExpert> experts;
  bool has_shared_expert = false;
  DeviceExpert shared_expert;
  DeviceLinear shared_expert_gate;
};

struct DeviceLayer {
  DeviceLinear q, k, v, o, gate, up, down;  // gate/up/down: dense layers only
  bool sparse = false;                      // a MoE layer: `moe` replaces the MLP
  DeviceMoe moe;
  // input_layernorm, post_attention_layernorm, Gemma's pre_/post_feedforward_layernorm.
  DeviceBuffer input_norm, post_norm, pre_ff_norm, post_ff_norm, q_norm, k_norm;
  bool has_qk_norm = false;
  bool has_ff_norms = false;

  // A Linear or float tensor by its name relative to the layer (model/layer_weights.h,
  // model/moe_layout.h); nullptr for names the layer has no slot for. The MoE block's float
  // Linears (router, shared_expert_gate) are Linears here and their weights float tensors.
  DeviceLinear* linear(std::string_view name);
  DeviceBuffer* norm(std::string_view name);
};

// The model features the CUDA forward implements: Unimplemented naming the first one `config`
// needs that it lacks.
absl::Status CheckCudaSupports(const ModelConfig& config);

// Copies host weights to the device (float32 masters) and builds the md operands; Linears still
// in the checkpoint (LinearWeights::source) are streamed from it through `staging` (null: pinned
// buffers of this call's own).
absl::Status UploadLayer(const LayerWeights& w, DType md, cudaStream_t stream, DeviceLayer* out,
                         SourceStaging* staging = nullptr);

// Rebuilds a Linear's md operand (and bias copy) from its float32 master.
void RefreshOperand(DeviceLinear* l, DType md, cudaStream_t stream);

// Grows `buf` to hold n elements of `elem` bytes.
absl::Status Ensure(DeviceBuffer* buf, int64_t n, size_t elem);

// A sparse block's routing, computed on the host from the router's logits (the CPU reference's
// RouteTokens, so both backends route identically) and laid out for the device: the token-expert
// pairs ("rows") sorted by expert, each expert's rows in the CPU's tokens_of order.
struct DeviceRouting {
  std::vector<int64_t> offset;  // [experts + 1]: expert e's rows are [offset[e], offset[e + 1])
  DeviceBuffer token;           // int32 [tokens · k]: the token of each row
  DeviceBuffer weight;          // float32 [tokens · k]: the row's routing weight (md values)
  int64_t rows(size_t e) const { return offset[e + 1] - offset[e]; }
  int64_t total() const { return offset.empty() ? 0 : offset.back(); }
};

// Scratch buffers of a forward over `tokens` rows, reused across calls.
struct ForwardScratch {
  DeviceBuffer x_op;  // md copy of a GEMM input
  DeviceBuffer q, k, v, attn, attn_op;
  DeviceBuffer q_op, k_op, v_op;  // attention inputs in md (16-bit md)
  DeviceBuffer gate, up, act, act_op;
  DeviceBuffer out;  // a module's output
  DeviceBuffer residual_norm;
  DeviceBuffer output_norm;  // Gemma: a module's output normalised before the residual sum
  // Sparse layers (cuda/moe_block.h): router logits, rows gathered per expert, one expert's
  // output, the shared expert's output and gate, the routing of a forward without capture.
  DeviceBuffer router_logits, routed_x, expert_out, shared_out, shared_gate;
  DeviceRouting routing;
};

// The weights a module forward uses: md operands and float32 biases (trial weights substitute
// their operands here).
struct AttentionWeights {
  const void *q, *k, *v, *o;
  const float *q_bias, *k_bias, *v_bias, *o_bias;
  const void *q_bias_op, *k_bias_op, *v_bias_op, *o_bias_op;  // md copies (16-bit md)
  const float *q_norm, *k_norm;                               // null when absent
};
struct MlpWeights {
  const void *gate, *up, *down;
  const float *gate_bias, *up_bias, *down_bias;
  int64_t intermediate = 0;  // 0: the config's intermediate_size (a MoE expert's is its own)
};

struct LayerGeometry {
  const ModelConfig* config;
  DType md;
  int64_t tokens, len;
  const float* rope_cos;  // [len, head_dim]
  const float* rope_sin;
  AttentionOptions attention;  // the layer's score scale, soft-capping and window
};

// The attention options of `config`'s layer `layer` (as backend/cpu/layer_ops.cc's
// AttentionScoresOf).
AttentionOptions AttentionOptionsOf(const ModelConfig& config, int layer);

// out[tokens, hidden] = self_attn(x) in out_type (float32, or md for 16-bit md: o_proj's GEMM
// then rounds to md itself, bias in its epilogue); x_op is x in md. `o_input` (optional,
// [tokens, heads·d]) receives the attention output.
absl::Status SelfAttentionForward(Gemm& gemm, const LayerGeometry& g, const AttentionWeights& w,
                                  const void* x_op, void* out, DType out_type, float* o_input,
                                  ForwardScratch* s, cudaStream_t stream);

// Whether MlpForward runs without float32 intermediates (16-bit md, no gate/up bias); then its
// down_proj input is kept in md, else in float32.
bool MlpUsesOperandPath(const MlpWeights& w, DType md);

// out = mlp(x), in out_type: float32, or md where MlpUsesOperandPath and down_proj has no bias
// (cuBLAS then rounds the accumulator to md, with no pass over the output). `down_input`
// (optional, [tokens, intermediate]) receives silu(gate)·up, in md when MlpUsesOperandPath, else
// float32.
absl::Status MlpForward(Gemm& gemm, const LayerGeometry& g, const MlpWeights& w, const void* x_op,
                        void* out, DType out_type, void* down_input, ForwardScratch* s,
                        cudaStream_t stream);

AttentionWeights AttentionOf(const DeviceLayer& l, DType md);
MlpWeights MlpOf(const DeviceLayer& l, DType md);

// What AWQ needs of a sparse block's forward (MoeCapture of the CPU backend).
struct DeviceMoeCapture {
  DeviceRouting routing;
  DeviceBuffer routed_input;       // [tokens · k, hidden] in md (float32 for float32 md), by row
  DeviceBuffer down_input;         // [tokens · k, expert intermediate], down_input_type
  DeviceBuffer shared_down_input;  // [tokens, shared intermediate], down_input_type
};

// Device copies of the intermediates AWQ needs (LayerCapture of the CPU backend).
struct DeviceCapture {
  DeviceBuffer attn_input, attn_input_op, o_input, attn_output;
  DeviceBuffer mlp_input, mlp_input_op, down_input, mlp_output;
  DType down_input_type = DType::kF32;  // md on MlpForward's operand path
  DeviceMoeCapture moe;                 // sparse layers
};

// hidden ← layer(hidden) over g.tokens rows; with `capture`, keeps the module inputs/outputs.
absl::Status DecoderLayerForward(Gemm& gemm, const LayerGeometry& g, const DeviceLayer& layer,
                                 float* hidden, DeviceCapture* capture, ForwardScratch* s,
                                 cudaStream_t stream);

// cos/sin tables [len, head_dim] of a layer's RoPE on the device.
absl::Status UploadRope(const ModelConfig& config, const LayerAttention& attention, int64_t len,
                        DType md, DeviceBuffer* cos, DeviceBuffer* sin, cudaStream_t stream);

}  // namespace quantd::engine::cuda

#endif  // QUANTD_ENGINE_CUDA_DEVICE_LAYER_H_
