#include "cuda/cuda_backend.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
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

namespace quantd::engine {
namespace cuda {

DeviceMemoryStats& GlobalDeviceMemoryStats() {
  static DeviceMemoryStats stats;
  return stats;
}

}  // namespace cuda

namespace {

using cuda::DeviceBuffer;

// Hidden states [blocks · len, hidden] as float32 device memory (values in md).
class CudaActivations : public Activations {
 public:
  CudaActivations(DeviceBuffer hidden, int64_t blocks, int64_t len, int64_t cols)
      : hidden_(std::move(hidden)), blocks_(blocks), len_(len), cols_(cols) {}
  int64_t num_blocks() const override { return blocks_; }
  int64_t block_len() const override { return len_; }
  int64_t cols() const { return cols_; }
  float* data() const { return hidden_.f32(); }

 private:
  DeviceBuffer hidden_;
  int64_t blocks_, len_, cols_;
};

class CudaBackend : public Backend {
 public:
  ~CudaBackend() override {
    if (staged_event_ != nullptr) cudaEventDestroy(staged_event_);
    if (copy_stream_ != nullptr) cudaStreamDestroy(copy_stream_);
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  absl::Status Init() {
    QUANTD_CUDA_RETURN_IF_ERROR(cudaSetDevice(0));
    QUANTD_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    QUANTD_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&copy_stream_, cudaStreamNonBlocking));
    QUANTD_CUDA_RETURN_IF_ERROR(cudaEventCreateWithFlags(&staged_event_, cudaEventDisableTiming));
    return gemm_.Init(stream_);
  }

  // Uploads the next layer on a copy stream into a second DeviceLayer while the current one is
  // worked on; QuantizeLayer swaps it in. One layer is staged at a time: if the last one was not
  // taken yet, this one is not staged (QuantizeLayer then uploads it itself).
  void StageLayer(const ModelConfig& config, DType md, const LayerWeights& weights) override {
    (void)config;
    std::lock_guard<std::mutex> lock(stage_mu_);
    if (staged_.has_value()) return;
    cudaSetDevice(0);  // the calling thread may not have made the device current
    if (!cuda::UploadLayer(weights, md, copy_stream_, &staged_layer_).ok() ||
        cudaEventRecord(staged_event_, copy_stream_) != cudaSuccess) {
      return;  // QuantizeLayer uploads it again and reports a real failure
    }
    staged_ = Staged{md, Fingerprint(weights)};
  }

  std::string_view name() const override { return "cuda"; }

  absl::StatusOr<std::unique_ptr<Activations>> Embed(
      const Tensor& embedding, const std::vector<std::vector<int32_t>>& blocks) override {
    absl::StatusOr<int64_t> block_len = UniformBlockLength(blocks);
    if (!block_len.ok()) return block_len.status();
    const int64_t len = *block_len;
    const int64_t hidden = embedding.dim(1);
    const int64_t tokens = static_cast<int64_t>(blocks.size()) * len;
    // Gathered on the host one block at a time, copied through a reused staging vector.
    DeviceBuffer h;
    if (absl::Status s = h.Reserve(static_cast<size_t>(tokens * hidden) * sizeof(float)); !s.ok())
      return s;
    std::vector<float> rows(static_cast<size_t>(len * hidden));
    for (size_t b = 0; b < blocks.size(); ++b) {
      if (absl::Status s = GatherEmbeddingRows(embedding, blocks[b], rows.data()); !s.ok()) {
        return s;
      }
      // On the backend's stream (non-blocking: a legacy-stream copy would not be ordered before
      // the kernels that read it); the pageable source is staged before the call returns.
      QUANTD_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(h.f32() + static_cast<int64_t>(b) * len * hidden,
                                                  rows.data(), rows.size() * sizeof(float),
                                                  cudaMemcpyHostToDevice, stream_));
    }
    QUANTD_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));
    return std::make_unique<CudaActivations>(std::move(h), static_cast<int64_t>(blocks.size()), len,
                                             hidden);
  }

  absl::StatusOr<QuantizedLayer> QuantizeLayer(const ModelConfig& config,
                                               const LayerQuantSettings& settings,
                                               LayerWeights weights, Activations* hidden,
                                               const CancellationToken* cancel) override {
    auto* act = static_cast<CudaActivations*>(hidden);
    if (!plan_logged_) {
      LogMemoryPlan(config, settings.md, act->num_blocks() * act->block_len());
      plan_logged_ = true;
    }
    cuda::AwqLayerRun run{&gemm_,          stream_,     &config,
                          settings,        act->data(), act->num_blocks() * act->block_len(),
                          act->block_len()};
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
    absl::StatusOr<QuantizedLayer> out =
        cuda::QuantizeLayerOnDevice(run, std::move(weights), uploaded, cancel, &workspace_);
    if (!use_logged_ && out.ok()) {
      LogMemoryUse();
      use_logged_ = true;
    }
    return out;
  }

  absl::Status ForwardLayer(const ModelConfig& config, DType md, const LayerWeights& weights,
                            Activations* hidden) override {
    auto* act = static_cast<CudaActivations*>(hidden);
    cuda::AwqLayerRun run{&gemm_,           stream_,     &config,
                          {128, md, false}, act->data(), act->num_blocks() * act->block_len(),
                          act->block_len()};
    return cuda::ForwardLayerOnDevice(run, weights, &workspace_);
  }

  absl::StatusOr<double> NextTokenNll(const ModelConfig& config, DType md, const Tensor& final_norm,
                                      const Tensor& lm_head, const Activations& hidden,
                                      const std::vector<std::vector<int32_t>>& targets) override {
    const auto& act = static_cast<const CudaActivations&>(hidden);
    cuda::AwqLayerRun run{&gemm_,           stream_,    &config,
                          {128, md, false}, act.data(), act.num_blocks() * act.block_len(),
                          act.block_len()};
    return cuda::NextTokenNllOnDevice(run, final_norm, lm_head, targets, &workspace_);
  }

  std::optional<DeviceMemoryReport> DeviceMemory(const ModelConfig& config, DType md,
                                                 int64_t tokens) override {
    plan_logged_ = true;  // the caller logs the plan and the use
    use_logged_ = true;
    return PlanMemory(config, md, tokens);
  }

 private:
  // The plan before the first layer (an estimate from the geometry) and what was actually
  // allocated. The pipeline asks for them through DeviceMemory() and logs them in the job log;
  // other callers (the benchmark) get them on stderr.
  static DeviceMemoryReport PlanMemory(const ModelConfig& c, DType md, int64_t tokens) {
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    const double gib = 1024.0 * 1024.0 * 1024.0;
    const double e = DTypeSize(md);
    const double h = c.hidden_size, im = c.intermediate_size;
    const double qd = double{1} * c.num_attention_heads * c.head_dim;
    const double kvd = double{1} * c.num_key_value_heads * c.head_dim;
    const double t = static_cast<double>(tokens);
    const double weights = (h * (qd + 2 * kvd) + qd * h + 3 * h * im) * (4 + e);
    const double hidden_b = t * h * 4;
    const double capture = t * (4 * h * 4 + 2 * h * e + qd * 4 + im * e);
    const double scratch = t * ((2 * qd + 2 * kvd) * 4 + qd * e + 3 * im * e + h * (8 + e)) +
                           2.0 * (1 << 30) + im * im * 4;
    const double planned = hidden_b + capture + scratch + weights;
    DeviceMemoryReport r;
    r.plan = absl::StrFormat(
        "memory plan: %lld calibration tokens resident on the GPU (hidden states %.2f GiB, "
        "captured module inputs/outputs %.2f GiB, forward and search scratch %.2f GiB), one "
        "layer's weights at a time (%.2f GiB): about %.1f GiB; the GPU has %.1f of %.1f GiB free",
        static_cast<long long>(tokens), hidden_b / gib, capture / gib, scratch / gib, weights / gib,
        planned / gib, static_cast<double>(free_b) / gib, static_cast<double>(total_b) / gib);
    r.planned_bytes = static_cast<int64_t>(planned);
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
    std::vector<float> f;
    const LinearWeights* all[] = {&w.q_proj,    &w.k_proj,  &w.v_proj,   &w.o_proj,
                                  &w.gate_proj, &w.up_proj, &w.down_proj};
    for (const LinearWeights* l : all) {
      const std::vector<float>& d = l->weight.data;
      f.push_back(static_cast<float>(d.size()));
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
  std::optional<Staged> staged_;    // guarded by stage_mu_
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

absl::StatusOr<std::unique_ptr<Backend>> CreateCudaBackend() {
  int n = 0;
  if (cudaError_t err = cudaGetDeviceCount(&n); err != cudaSuccess || n == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("backend 'cuda': no usable CUDA device (",
                     err != cudaSuccess ? cudaGetErrorString(err) : "device count is 0", ")"));
  }
  auto backend = std::make_unique<CudaBackend>();
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
