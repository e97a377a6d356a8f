#include "cuda/cuda_backend.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cuda/awq_layer.h"
#include "cuda/device_buffer.h"
#include "cuda/device_layer.h"
#include "cuda/gemm.h"
#include "cuda/kernels.h"
#include "cuda/pinned_buffer.h"
#include "io/checkpoint_reader.h"
#include "io/status_macros.h"
#include "model/memory_geometry.h"
#include "parallel/sharded_statistics.h"
#include "quantd/memory_plan/memory_plan.h"

namespace quantd::engine {
namespace cuda {

DeviceMemoryStats& GlobalDeviceMemoryStats() {
  // Per device: data-parallel ranks of one process each plan with their own GPU's figures.
  static std::array<DeviceMemoryStats, 64> stats;
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) device = 0;
  return stats[static_cast<size_t>(std::clamp(device, 0, 63))];
}

}  // namespace cuda

namespace {

using cuda::DeviceBuffer;

// Hidden states [blocks · len, hidden] as float32 (values in md): on the device, or in pinned host
// memory; worked on in chunks of chunk_blocks blocks (planned at the first layer, when the model's
// geometry is known). In place (one chunk, on the device) a layer updates them where they are;
// otherwise it reads the current buffer and writes the other.
class CudaActivations : public Activations {
 public:
  CudaActivations(int64_t blocks, int64_t len, int64_t cols, bool on_host)
      : blocks_(blocks), len_(len), cols_(cols), on_host_(on_host) {}
  int64_t num_blocks() const override { return blocks_; }
  int64_t block_len() const override { return len_; }
  int64_t cols() const { return cols_; }
  int64_t chunk_blocks() const { return chunk_blocks_; }  // 0 until planned
  void set_chunk_blocks(int64_t b) { chunk_blocks_ = std::clamp<int64_t>(b, 1, blocks_); }
  bool on_host() const { return on_host_; }
  bool in_place() const { return InPlaceWith(chunk_blocks_); }
  // Whether chunks of `chunk_blocks` blocks make one chunk worked on where the states are.
  bool InPlaceWith(int64_t chunk_blocks) const { return !on_host_ && chunk_blocks >= blocks_; }
  size_t bytes() const { return static_cast<size_t>(blocks_ * len_ * cols_) * sizeof(float); }

  absl::Status Allocate() { return Reserve(cur_); }
  float* current() const { return Data(cur_); }
  // The buffer a layer writes when not in place (allocated on first use).
  absl::StatusOr<float*> other() {
    if (absl::Status s = Reserve(cur_ ^ 1); !s.ok()) return s;
    return Data(cur_ ^ 1);
  }
  // After a layer that was not in place: its output becomes the current states.
  void Advance() {
    if (!in_place()) cur_ ^= 1;
  }

 private:
  absl::Status Reserve(int i) {
    return on_host_ ? host_[i].Reserve(bytes()) : device_[i].Reserve(bytes());
  }
  float* Data(int i) const { return on_host_ ? host_[i].f32() : device_[i].f32(); }

  int64_t blocks_, len_, cols_, chunk_blocks_ = 0;
  bool on_host_;
  int cur_ = 0;
  DeviceBuffer device_[2];
  cuda::PinnedBuffer host_[2];
};

using memory_plan::kGiB;

class CudaBackend : public Backend {
 public:
  explicit CudaBackend(const CudaBackendOptions& options) : options_(options) {}
  ~CudaBackend() override {
    if (staged_event_ != nullptr) cudaEventDestroy(staged_event_);
    if (copy_stream_ != nullptr) cudaStreamDestroy(copy_stream_);
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  absl::Status Init() {
    QUANTD_RETURN_IF_ERROR(UseDevice());
    QUANTD_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    QUANTD_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&copy_stream_, cudaStreamNonBlocking));
    QUANTD_CUDA_RETURN_IF_ERROR(cudaEventCreateWithFlags(&staged_event_, cudaEventDisableTiming));
    return gemm_.Init(stream_);
  }

  // Uploads the next layer on a copy stream into a second DeviceLayer while the current one is
  // worked on; QuantizeLayer swaps it in. One layer is staged at a time: if the last one was not
  // taken yet, this one is not staged (QuantizeLayer then uploads it itself). Layers the memory
  // plan holds one at a time (memory_plan::LayersInFlight) are never staged.
  void StageLayer(const ModelConfig& config, DType md, const LayerWeights& weights) override {
    if (memory_plan::LayersInFlight(memory_plan::EstimateMemory(MemoryGeometryOf(config, md))) <
        2) {
      return;
    }
    std::lock_guard<std::mutex> lock(stage_mu_);
    if (staged_.has_value()) return;
    if (!UseDevice().ok()) return;  // QuantizeLayer reports it
    if (!cuda::UploadLayer(weights, md, copy_stream_, &staged_layer_, &stage_source_).ok() ||
        cudaEventRecord(staged_event_, copy_stream_) != cudaSuccess) {
      return;  // QuantizeLayer uploads it again and reports a real failure
    }
    staged_ = Staged{md, Fingerprint(weights)};
  }

  std::string_view name() const override { return "cuda"; }

  // Linears still in the checkpoint are streamed to the GPU (cuda/source_upload.h).
  bool ReadsLayerSources() const override { return true; }

  absl::StatusOr<std::unique_ptr<Activations>> Embed(
      const Tensor& embedding, const std::vector<std::vector<int32_t>>& blocks) override {
    QUANTD_RETURN_IF_ERROR(UseDevice());
    absl::StatusOr<int64_t> block_len = UniformBlockLength(blocks);
    if (!block_len.ok()) return block_len.status();
    const int64_t len = *block_len;
    const int64_t hidden = embedding.dim(1);
    const int64_t n = static_cast<int64_t>(blocks.size());
    // The hidden states go to the device unless two copies of them (a chunked layer reads one
    // and writes the other) would take more than a quarter of its free memory; the chunk size is
    // planned at the first layer, which knows the model's geometry.
    size_t free_b = 0, total_b = 0;
    QUANTD_CUDA_RETURN_IF_ERROR(cudaMemGetInfo(&free_b, &total_b));
    const double bytes = static_cast<double>(n * len * hidden) * sizeof(float);
    const bool on_host = options_.hidden_states_on_host ||
                         memory_plan::HiddenStatesOnHost(bytes, static_cast<double>(free_b));
    auto act = std::make_unique<CudaActivations>(n, len, hidden, on_host);
    if (absl::Status s = act->Allocate(); !s.ok()) return s;
    if (n * len > embedded_.tokens) embedded_ = {n * len, len, on_host};  // the calibration set
    if (on_host) {  // gathered straight into the pinned buffer
      for (int64_t b = 0; b < n; ++b) {
        if (absl::Status s = GatherEmbeddingRows(embedding, blocks[static_cast<size_t>(b)],
                                                 act->current() + b * len * hidden);
            !s.ok()) {
          return s;
        }
      }
      return act;
    }
    // Gathered on the host one block at a time, copied through a reused staging vector.
    std::vector<float> rows(static_cast<size_t>(len * hidden));
    for (int64_t b = 0; b < n; ++b) {
      if (absl::Status s =
              GatherEmbeddingRows(embedding, blocks[static_cast<size_t>(b)], rows.data());
          !s.ok()) {
        return s;
      }
      // On the backend's stream (non-blocking: a legacy-stream copy would not be ordered before
      // the kernels that read it); the pageable source is staged before the call returns.
      QUANTD_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(act->current() + b * len * hidden, rows.data(),
                                                  rows.size() * sizeof(float),
                                                  cudaMemcpyHostToDevice, stream_));
    }
    QUANTD_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));
    return act;
  }

  absl::StatusOr<QuantizedLayer> QuantizeLayer(const ModelConfig& config,
                                               const LayerQuantSettings& settings,
                                               LayerWeights weights, Activations* hidden,
                                               const CancellationToken* cancel) override {
    QUANTD_RETURN_IF_ERROR(UseDevice());
    auto* act = static_cast<CudaActivations*>(hidden);
    QUANTD_RETURN_IF_ERROR(Plan(config, settings.md, act));
    if (!plan_logged_) {
      LogMemoryPlan(config, settings.md, act->num_blocks() * act->block_len());
      plan_logged_ = true;
    }
    QUANTD_ASSIGN_OR_RETURN(cuda::AwqLayerRun run, RunOn(config, settings, act));
    // Data-parallel: where this rank's tokens lie among all ranks' (parallel/communicator.h).
    QUANTD_ASSIGN_OR_RETURN(const RowShard shard, ShardRows(options_.comm, run.tokens));
    run.comm = options_.comm;
    run.token_offset = shard.first;
    run.total_tokens = shard.total;
    bool uploaded = false;
    {
      std::lock_guard<std::mutex> lock(stage_mu_);
      if (staged_.has_value() && staged_->md == settings.md &&
          staged_->fingerprint == Fingerprint(weights)) {
        QUANTD_CUDA_RETURN_IF_ERROR(cudaStreamWaitEvent(stream_, staged_event_, 0));
        std::swap(workspace_.layer, staged_layer_);
        uploaded = true;
      }
      staged_.reset();
    }
    if (!uploaded) {  // on the backend's stream, after whatever it still runs
      const auto start = std::chrono::steady_clock::now();
      QUANTD_RETURN_IF_ERROR(
          cuda::UploadLayer(weights, settings.md, stream_, &workspace_.layer, &upload_source_));
      cuda::GlobalPhaseTotals().upload +=
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      uploaded = true;
    }
    // The device has the layer (a copy from pageable memory is staged before the call returns):
    // the host copy goes now, and with it the prefetcher's hold on the next layer's read.
    ReleaseLinearWeights(&weights);
    // Held-out states advance through the same resident weights (Backend::SetHeldOut).
    auto* float_held = static_cast<CudaActivations*>(held_out().float_hidden);
    auto* quant_held = static_cast<CudaActivations*>(held_out().quantized_hidden);
    std::optional<cuda::AwqLayerRun> float_run, quant_run;
    cuda::HeldOutRuns held;
    if (float_held != nullptr) {
      QUANTD_RETURN_IF_ERROR(Plan(config, settings.md, float_held));
      QUANTD_ASSIGN_OR_RETURN(float_run, RunOn(config, settings, float_held));
      held.float_run = &*float_run;
    }
    if (quant_held != nullptr) {
      LayerQuantSettings quantized = settings;
      quantized.md = held_out().quantized_md;
      QUANTD_RETURN_IF_ERROR(Plan(config, quantized.md, quant_held));
      QUANTD_ASSIGN_OR_RETURN(quant_run, RunOn(config, quantized, quant_held));
      held.quantized_run = &*quant_run;
    }
    absl::StatusOr<QuantizedLayer> out =
        cuda::QuantizeLayerOnDevice(run, std::move(weights), uploaded, cancel, held, &workspace_);
    if (out.ok()) {
      act->Advance();
      if (float_held != nullptr) float_held->Advance();
      if (quant_held != nullptr) quant_held->Advance();
    }
    if (!use_logged_ && out.ok()) {
      LogMemoryUse();
      use_logged_ = true;
    }
    return out;
  }

  absl::Status ForwardLayer(const ModelConfig& config, DType md, const LayerWeights& weights,
                            Activations* hidden) override {
    QUANTD_RETURN_IF_ERROR(UseDevice());
    auto* act = static_cast<CudaActivations*>(hidden);
    QUANTD_RETURN_IF_ERROR(Plan(config, md, act));
    QUANTD_ASSIGN_OR_RETURN(cuda::AwqLayerRun run, RunOn(config, {128, md, false}, act));
    QUANTD_RETURN_IF_ERROR(cuda::ForwardLayerOnDevice(run, weights, &workspace_));
    act->Advance();
    return absl::OkStatus();
  }

  absl::StatusOr<double> NextTokenNll(const ModelConfig& config, DType md, const Tensor& final_norm,
                                      const Tensor& lm_head, const Activations& hidden,
                                      const std::vector<std::vector<int32_t>>& targets) override {
    // Reads the states only: no output buffer (chunked, the chunks are copied in).
    QUANTD_RETURN_IF_ERROR(UseDevice());
    const auto& act = static_cast<const CudaActivations&>(hidden);
    QUANTD_ASSIGN_OR_RETURN(const int64_t chunk_blocks, PlannedChunkBlocks(config, md, act));
    return cuda::NextTokenNllOnDevice(ReadRun(config, {128, md, false}, act, chunk_blocks),
                                      final_norm, lm_head, targets, &workspace_);
  }

  std::optional<DeviceMemoryReport> DeviceMemory(const ModelConfig& config, DType md,
                                                 int64_t tokens) override {
    plan_logged_ = true;  // the caller logs the plan and the use
    use_logged_ = true;
    if (!UseDevice().ok()) return std::nullopt;
    return PlanMemory(config, md, tokens);
  }

 private:
  // Makes the backend's device current on the calling thread: data-parallel ranks are driven by
  // threads that may have another one current (and the pipeline stages from its reader thread).
  absl::Status UseDevice() const {
    return cuda::CudaStatus(cudaSetDevice(options_.device), "cudaSetDevice");
  }

  // A run reading `act`'s current states in chunks of `chunk_blocks` blocks.
  cuda::AwqLayerRun ReadRun(const ModelConfig& config, const LayerQuantSettings& settings,
                            const CudaActivations& act, int64_t chunk_blocks) {
    cuda::AwqLayerRun run{&gemm_,         stream_,       &config,
                          settings,       act.current(), act.num_blocks() * act.block_len(),
                          act.block_len()};
    run.in_place = act.InPlaceWith(chunk_blocks);
    run.chunk_tokens = chunk_blocks * act.block_len();
    return run;
  }

  // The run of one layer over `act` as planned: in place, or chunk by chunk from its current
  // buffer into the other.
  absl::StatusOr<cuda::AwqLayerRun> RunOn(const ModelConfig& config,
                                          const LayerQuantSettings& settings,
                                          CudaActivations* act) {
    cuda::AwqLayerRun run = ReadRun(config, settings, *act, act->chunk_blocks());
    if (!run.in_place) {
      absl::StatusOr<float*> out = act->other();
      if (!out.ok()) return out.status();
      run.hidden_out = *out;
    }
    return run;
  }

  // Chooses the chunk size of `act` once, before its first layer (ChunkBlocks). Fails, naming the
  // sizes, when not even one block fits.
  absl::Status Plan(const ModelConfig& config, DType md, CudaActivations* act) {
    if (act->chunk_blocks() > 0) return absl::OkStatus();
    QUANTD_ASSIGN_OR_RETURN(const int64_t chunk, PlannedChunkBlocks(config, md, *act));
    act->set_chunk_blocks(chunk);
    return absl::OkStatus();
  }

  // The chunk size Plan() chooses, without recording it (NextTokenNll only reads its states).
  absl::StatusOr<int64_t> PlannedChunkBlocks(const ModelConfig& config, DType md,
                                             const CudaActivations& act) const {
    if (act.chunk_blocks() > 0) return act.chunk_blocks();
    if (options_.chunk_blocks > 0) return std::min(options_.chunk_blocks, act.num_blocks());
    const memory_plan::MemoryEstimate m = memory_plan::EstimateMemory(MemoryGeometryOf(config, md));
    const double budget = Budget(act.on_host() ? 0 : act.bytes());
    const int64_t chunk =
        memory_plan::ChunkBlocks(m, act.num_blocks(), act.block_len(), act.on_host(), budget);
    if (chunk == 0) {
      return absl::ResourceExhaustedError(absl::StrFormat(
          "not enough GPU memory: a layer of %s (hidden %d, intermediate %d) needs about %.1f GiB "
          "per calibration block of %lld tokens beside %.1f GiB of weights and search buffers "
          "(and, on the GPU, a second copy of the hidden states); about %.1f GiB are available",
          config.architecture_name, config.hidden_size, config.intermediate_size,
          static_cast<double>(act.block_len()) * (m.per_token + m.hidden_per_token) / kGiB,
          static_cast<long long>(act.block_len()),
          (m.fixed + memory_plan::LayersInFlight(m) * m.weights) / kGiB, budget / kGiB));
    }
    return chunk;
  }

  // Device bytes a layer may use beside `hidden_bytes` of hidden states on the device: what is
  // free plus what the backend holds already (reused), less the plan's margin.
  static double Budget(size_t hidden_bytes) {
    return memory_plan::LayerBudget(Available(), static_cast<double>(hidden_bytes));
  }
  // Free device memory plus what the backend holds already: what the memory plan may use.
  static double Available() {
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    return static_cast<double>(free_b + cuda::GlobalDeviceMemoryStats().current);
  }

  // The plan before the first layer (an estimate from the geometry, for the calibration states
  // last embedded) and what was actually allocated. The pipeline asks for them through
  // DeviceMemory() and logs them in the job log; other callers (the benchmark) get them on stderr.
  DeviceMemoryReport PlanMemory(const ModelConfig& c, DType md, int64_t tokens) const {
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    const int64_t len = embedded_.len > 0 ? embedded_.len : tokens;
    const int64_t blocks = std::max<int64_t>(1, tokens / std::max<int64_t>(1, len));
    // The states are embedded already: what the plan may use is what is free now plus what the
    // backend holds (the states among it), as when the first layer planned its chunks.
    const memory_plan::RunPlan p =
        memory_plan::PlanRun(MemoryGeometryOf(c, md), blocks, len, Available(),
                             {options_.chunk_blocks, embedded_.on_host});
    std::string where;
    if (p.in_place) {
      where = absl::StrFormat("%lld calibration tokens resident on the GPU (hidden states %.2f GiB",
                              static_cast<long long>(tokens), p.hidden_bytes / kGiB);
    } else {
      where = absl::StrFormat(
          "%lld calibration tokens in %lld chunks of %lld blocks (hidden states %s, %.2f GiB; "
          "per chunk",
          static_cast<long long>(tokens), static_cast<long long>(p.chunks),
          static_cast<long long>(p.chunk_blocks),
          p.hidden_on_host ? "in pinned host memory"
                           : "on the GPU, read from one copy and written to another",
          p.hidden_bytes / kGiB);
    }
    DeviceMemoryReport r;
    r.plan = absl::StrFormat(
        "memory plan: %s, captured module inputs/outputs %.2f GiB, forward and search scratch "
        "%.2f GiB), %s (%.2f GiB each): about %.1f GiB; the GPU has %.1f of %.1f GiB free",
        where, p.capture_bytes / kGiB, p.scratch_bytes / kGiB,
        p.layers_in_flight > 1 ? "two layers' weights at a time"
                               : "one layer's weights at a time (too large to stage the next)",
        p.weights_bytes / kGiB, p.planned_bytes / kGiB, static_cast<double>(free_b) / kGiB,
        static_cast<double>(total_b) / kGiB);
    if (!p.fits()) r.plan += " (does not fit: the first layer will fail)";
    r.planned_bytes = static_cast<int64_t>(p.planned_bytes);
    r.peak_allocated_bytes = static_cast<int64_t>(cuda::GlobalDeviceMemoryStats().peak);
    r.device_total_bytes = static_cast<int64_t>(total_b);
    r.device_free_bytes = static_cast<int64_t>(free_b);
    return r;
  }

  void LogMemoryPlan(const ModelConfig& c, DType md, int64_t tokens) {
    std::fprintf(stderr, "[quantd cuda] %s\n", PlanMemory(c, md, tokens).plan.c_str());
  }

  void LogMemoryUse() {
    const cuda::DeviceMemoryStats& st = cuda::GlobalDeviceMemoryStats();
    const double gib = 1024.0 * 1024.0 * 1024.0;
    std::fprintf(stderr,
                 "[quantd cuda] after the first layer: %.2f GiB allocated on the GPU (peak %.2f "
                 "GiB)\n",
                 static_cast<double>(st.current) / gib, static_cast<double>(st.peak) / gib);
  }

  // Identifies a staged layer: every Linear's shape and a few of its values.
  static std::vector<float> Fingerprint(const LayerWeights& w) {
    std::vector<float> f = {static_cast<float>(w.index)};
    std::vector<const LinearWeights*> all = {&w.q_proj,    &w.k_proj,  &w.v_proj,   &w.o_proj,
                                             &w.gate_proj, &w.up_proj, &w.down_proj};
    if (w.moe.has_value()) {
      all.push_back(&w.moe->router);
      for (const ExpertWeights& e : w.moe->experts) all.push_back(&e.down_proj);
    }
    for (const LinearWeights* l : all) {
      const std::vector<float>& d = l->weight.data;  // empty while in the checkpoint
      f.push_back(static_cast<float>(Tensor::NumElements(l->weight.shape)));
      if (l->source.has_value()) {  // where in the checkpoint, instead of values
        f.push_back(static_cast<float>(l->source->first));
        f.push_back(static_cast<float>(reinterpret_cast<uintptr_t>(l->source->bytes) % 16777213));
      }
      for (size_t i : {size_t{0}, d.size() / 3, d.size() / 2, d.size() - 1}) {
        if (i < d.size()) f.push_back(d[i]);
      }
    }
    return f;
  }

  struct Staged {
    DType md;
    std::vector<float> fingerprint;
  };

  cudaStream_t stream_ = nullptr;
  cudaStream_t copy_stream_ = nullptr;
  cudaEvent_t staged_event_ = nullptr;
  std::mutex stage_mu_;
  cuda::DeviceLayer staged_layer_;  // guarded by stage_mu_
  // Guarded by stage_mu_ (uploads on copy_stream_); half the reading threads: it runs beside the
  // current layer's host work.
  cuda::SourceStaging stage_source_{std::max(1, LayerReadThreads() / 2)};
  cuda::SourceStaging upload_source_;  // QuantizeLayer's own uploads (on stream_)
  std::optional<Staged> staged_;       // guarded by stage_mu_
  CudaBackendOptions options_;
  struct Embedded {
    int64_t tokens = 0, len = 0;
    bool on_host = false;
  } embedded_;  // the largest activations embedded (the calibration set), for the memory plan
  cuda::Gemm gemm_;
  cuda::AwqWorkspace workspace_;
  bool plan_logged_ = false;
  bool use_logged_ = false;
};

}  // namespace

bool CudaDeviceAvailable() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

absl::StatusOr<std::unique_ptr<Backend>> CreateCudaBackend(const CudaBackendOptions& options) {
  int n = 0;
  if (cudaError_t err = cudaGetDeviceCount(&n); err != cudaSuccess || n == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("backend 'cuda': no usable CUDA device (",
                     err != cudaSuccess ? cudaGetErrorString(err) : "device count is 0", ")"));
  }
  if (options.device < 0 || options.device >= n) {
    return absl::FailedPreconditionError(absl::StrCat(
        "backend 'cuda': device ", options.device, " asked for, ", n,
        " visible (CUDA_VISIBLE_DEVICES=",
        std::getenv("CUDA_VISIBLE_DEVICES") != nullptr ? std::getenv("CUDA_VISIBLE_DEVICES")
                                                       : "unset",
        ")"));
  }
  auto backend = std::make_unique<CudaBackend>(options);
  if (absl::Status s = backend->Init(); !s.ok()) return s;
  return std::unique_ptr<Backend>(std::move(backend));
}

CudaPhaseSeconds CudaPhaseTotals() { return cuda::GlobalPhaseTotals(); }

size_t CudaPeakDeviceBytes() { return cuda::GlobalDeviceMemoryStats().peak; }

size_t CudaDeviceBytesInUse() { return cuda::GlobalDeviceMemoryStats().current; }

double CudaAllocationSeconds() {
  return static_cast<double>(cuda::GlobalDeviceMemoryStats().malloc_ns.load()) * 1e-9;
}

}  // namespace quantd::engine
