// The AWQ engine's GPU memory plan, as a library of its own: plain arithmetic on a decoder
// layer's geometry, no CUDA and nothing else of the engine, so that the CUDA backend (which
// chooses its token chunks with it) and the server's scheduler (which places jobs with it) link
// the same code and never disagree about whether, and how, a job fits a GPU.
//
// The plan: one layer's working set is estimated from the geometry (weights and search buffers
// fixed; captured module inputs/outputs and forward/search scratch per token). The calibration
// hidden states stay on the GPU unless two copies of them would take more than a quarter of the
// memory available, in which case they live in pinned host memory. All calibration blocks are
// worked on at once (in place) when the layer's working set fits beside them; otherwise in
// chunks of as many whole blocks as fit beside a second device copy of the hidden states (none
// when they are on the host) and a chunk buffer. A job whose single block does not fit does not
// fit the GPU at all.
#ifndef QUANTD_MEMORY_PLAN_MEMORY_PLAN_H_
#define QUANTD_MEMORY_PLAN_MEMORY_PLAN_H_

#include <cstdint>
#include <optional>

namespace quantd::memory_plan {

inline constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
// Kept free for the CUDA context's own allocations and fragmentation.
inline constexpr double kMarginBytes = 1.0 * kGiB;
// What a CUDA context and cuBLAS take before the engine measures the free memory: the scheduler
// subtracts it from a GPU's total to get what the engine will see as available.
inline constexpr double kContextBytes = 0.75 * kGiB;

// What the plan needs of a model: one decoder layer's shape and the model dtype AutoAWQ computes
// in (2 bytes for float16/bfloat16, 4 for float32).
struct LayerGeometry {
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;
  int dtype_bytes = 2;
  // Mixtures of experts (0 experts: a dense layer; intermediate_size is then unused).
  int64_t num_experts = 0;
  int64_t experts_per_token = 0;
  int64_t expert_intermediate_size = 0;
  int64_t shared_expert_intermediate_size = 0;  // Qwen2-MoE's shared expert, else 0
};

// Device memory of a layer by parts (bytes), estimated from the geometry.
struct MemoryEstimate {
  double weights;            // one layer: float32 masters and model-dtype GEMM operands
  double fixed;              // trial batches, Gram matrices, cuBLAS workspaces
  double per_token;          // captured module inputs/outputs and forward/search scratch
  double capture_per_token;  // the captured part of per_token
  double hidden_per_token;   // one float32 row of hidden states
};
MemoryEstimate EstimateMemory(const LayerGeometry& geometry);

// Layers whose weights the engine holds at once, on the GPU and on the host: the one being
// quantized and the next (read, and staged on the GPU, while it is), or only the one being
// quantized when a layer's weights (MemoryEstimate::weights) exceed kStageAheadMaxBytes. A second
// layer that large (Mixtral-8x7B: 8.1 GiB on the GPU, 5.4 GiB of float32 on the host) costs more
// memory than its upload costs time; the next layer is then read once the current one's host copy
// is on the GPU and dropped, and uploaded when its turn comes (docs/perf.md, "Mixtures of
// experts").
inline constexpr double kStageAheadMaxBytes = 4.0 * kGiB;
int LayersInFlight(const MemoryEstimate& m);

// Whether hidden states of `hidden_bytes` (one float32 copy) go to pinned host memory: two copies
// of them would take more than a quarter of `available_bytes`.
bool HiddenStatesOnHost(double hidden_bytes, double available_bytes);

// Blocks per chunk for `blocks` blocks of `len` tokens given `budget` bytes of device memory
// beside the hidden states: all of them when the layer's working set fits (hidden states on the
// device, worked on in place), else as many as fit beside a second device copy of the hidden
// states (none when they are on the host) and a chunk buffer; 0 when not even one block does.
int64_t ChunkBlocks(const MemoryEstimate& m, int64_t blocks, int64_t len, bool on_host,
                    double budget);

// Device bytes a layer may use, given `available_bytes` (free plus what the backend holds) and
// `hidden_device_bytes` of hidden states on the device.
double LayerBudget(double available_bytes, double hidden_device_bytes);

// The whole plan of a run of `blocks` blocks of `len` tokens.
struct RunPlan {
  int64_t blocks = 0, len = 0;
  bool hidden_on_host = false;
  int64_t chunk_blocks = 0;  // 0: does not fit
  int64_t chunks = 0;
  bool in_place = false;
  double hidden_bytes = 0;         // one copy of the hidden states
  double hidden_device_bytes = 0;  // what of them (both copies and the chunk buffer) is on the GPU
  double capture_bytes = 0;        // per chunk
  double scratch_bytes = 0;        // per chunk, fixed buffers included
  double weights_bytes = 0;        // one layer
  int layers_in_flight = 2;        // LayersInFlight
  double planned_bytes = 0;        // the total on the GPU
  bool fits() const { return chunk_blocks > 0; }
};

// Decisions taken elsewhere: a forced chunk size (tests), or where the hidden states already are
// (the backend places them when it embeds, before it knows the model's geometry).
struct PlanOverrides {
  int64_t chunk_blocks = 0;  // > 0: this many blocks per chunk
  std::optional<bool> hidden_on_host;
};

// The plan on a device with `available_bytes` usable (free memory once the CUDA context exists,
// plus what the backend already holds).
RunPlan PlanRun(const LayerGeometry& geometry, int64_t blocks, int64_t len, double available_bytes,
                const PlanOverrides& overrides = {});

// The smallest GPU (total memory, a CUDA context included) on which a run of `blocks` × `len`
// fits, in bytes.
int64_t SmallestGpuBytes(const LayerGeometry& geometry, int64_t blocks, int64_t len);

// What the engine will see as available on a GPU of `total_bytes` of which `used_bytes` are taken.
double AvailableOnGpu(double total_bytes, double used_bytes);

// Data-parallel calibration (a job on several GPUs): `blocks` calibration blocks are split into
// `ranks` contiguous runs, the first blocks % ranks of them one block longer. The first block of
// `rank` and how many it holds; RankBlocks(b, r, r + 1) = b. The engine splits with this and the
// scheduler plans each GPU of a job for its largest share (BlocksPerRank).
int64_t RankFirstBlock(int64_t blocks, int ranks, int rank);
int64_t RankBlocks(int64_t blocks, int ranks, int rank);
int64_t BlocksPerRank(int64_t blocks, int ranks);

}  // namespace quantd::memory_plan

#endif  // QUANTD_MEMORY_PLAN_MEMORY_PLAN_H_
