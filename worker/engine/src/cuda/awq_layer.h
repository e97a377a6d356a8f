// AWQ of one decoder layer on the GPU (spec/awq.md §2–§7, the CPU reference's QuantizeLayer): the
// captured forward, the batched scale search per scaling group (all grid points' trial weights
// built in one launch, losses reduced on the device), scale folding, the clip search, float16
// quantization and GEMM packing — queued with three host synchronisations per layer.
#ifndef QUANTD_ENGINE_CUDA_AWQ_LAYER_H_
#define QUANTD_ENGINE_CUDA_AWQ_LAYER_H_

#include <cuda_runtime.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "backend/backend.h"
#include "cuda/cuda_backend.h"
#include "cuda/device_buffer.h"
#include "cuda/device_layer.h"
#include "cuda/gemm.h"
#include "cuda/pinned_arena.h"
#include "parallel/communicator.h"

namespace quantd::engine::cuda {

// What one call works on: the backend's cuBLAS handle and stream, and the hidden states. In place
// (they fit): `hidden` is the device buffer, updated in place, all tokens at once. Otherwise the
// tokens are worked on in chunks of whole blocks: read from `hidden` and written to `hidden_out`
// (device or pinned host memory), each chunk copied through the workspace.
struct AwqLayerRun {
  Gemm* gemm;
  cudaStream_t stream;
  const ModelConfig* config;
  LayerQuantSettings settings;
  float* hidden;   // [tokens, hidden_size]: the layer's input
  int64_t tokens;  // blocks · len
  int64_t len;
  bool in_place = true;
  float* hidden_out = nullptr;  // [tokens, hidden_size] when not in place
  int64_t chunk_tokens = 0;     // rows per chunk (a multiple of len) when not in place
  // Data-parallel calibration (parallel/communicator.h): this rank's tokens are the rows
  // [token_offset, token_offset + tokens) of all ranks' total_tokens; the statistics, grid losses
  // and clip samples are summed across the ranks. Null: one rank (total_tokens = tokens).
  Communicator* comm = nullptr;
  int64_t token_offset = 0;
  int64_t total_tokens = 0;
};

// Trial buffers of one batch of grid points are kept under this size; the rest of the grid runs
// in further batches (still without a host synchronisation). A batch holds at least one point.
inline constexpr size_t kTrialBudgetBytes = size_t{1} << 30;

// The captured inputs the clip search samples: self_attn's, o_proj's, the MLP's, down_proj's.
inline constexpr int kClipInputs = 4;

// Device memory kept between layers (grown on demand, never shrunk).
struct AwqWorkspace {
  DeviceLayer layer;
  DeviceCapture capture;
  ForwardScratch scratch;
  DeviceBuffer rope_cos, rope_sin;
  std::string rope_key;                    // what the tables were built for
  int layer_index = 0;                     // the layer the tables (and geometry) are for
  DeviceBuffer trial_a, trial_b, trial_c;  // trial operands / deltas
  std::vector<DeviceBuffer> grams;         // per scaling group (Gram-form groups only)
  DeviceBuffer gram_lo, ref_op, product, scales, sums, denom, means, losses, out;
  std::array<DeviceBuffer, kClipInputs> samples, samples_lo;  // the clip search's sampled inputs
  DeviceBuffer moe_sample, moe_sample_lo;  // a sparse block Linear's sampled input
  DeviceBuffer max_val, shrink;
  DeviceBuffer chunk_hidden;  // one chunk's hidden states when the run is not in place
  DeviceBuffer codes, qscales, zeros, qweight, qzeros, scales_t;
  DeviceBuffer quality_scales, quality_losses;  // the quality report's extra trials
  DeviceBuffer lm_head, logits, targets;
  // The host lm_head whose float32 copy `logits` holds (NextTokenNllOnDevice), if any.
  const float* lm_head_source = nullptr;
  int64_t lm_head_elements = 0;
  PinnedArena host;  // staging of the layer's uploads and downloads
};

// Per-phase wall time of QuantizeLayerOnDevice on the calling thread's current device, accumulated.
CudaPhaseSeconds& GlobalPhaseTotals();

// Held-out states a layer also forwards (Backend::SetHeldOut): the float model's through the
// float layer (float_run.settings.md = the model's dtype) before AWQ changes the weights, the
// quantized model's through the dequantized layer (quantized_run.settings.md = the scale dtype)
// after. Either may be null.
struct HeldOutRuns {
  const AwqLayerRun* float_run = nullptr;
  const AwqLayerRun* quantized_run = nullptr;
};

// `uploaded`: ws->layer already holds `weights` (staged by the backend, the stream waits for the
// copy); otherwise they are uploaded first. With a quantized held-out run, ws->layer holds the
// dequantized layer afterwards.
absl::StatusOr<QuantizedLayer> QuantizeLayerOnDevice(const AwqLayerRun& run, LayerWeights weights,
                                                     bool uploaded, const CancellationToken* cancel,
                                                     const HeldOutRuns& held_out, AwqWorkspace* ws);

absl::Status ForwardLayerOnDevice(const AwqLayerRun& run, const LayerWeights& weights,
                                  AwqWorkspace* ws);

absl::StatusOr<double> NextTokenNllOnDevice(const AwqLayerRun& run, const Tensor& final_norm,
                                            const Tensor& lm_head,
                                            const std::vector<std::vector<int32_t>>& targets,
                                            AwqWorkspace* ws);

}  // namespace quantd::engine::cuda

#endif  // QUANTD_ENGINE_CUDA_AWQ_LAYER_H_
