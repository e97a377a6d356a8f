#include "parallel/data_parallel_backend.h"

#include <algorithm>
#include <thread>

#include "absl/strings/str_cat.h"
#include "backend/cpu/cpu_backend.h"
#include "io/status_macros.h"
#include "quantd/memory_plan/memory_plan.h"
#if defined(QUANTD_HAVE_CUDA)
#include "cuda/cuda_backend.h"
#endif
#if defined(QUANTD_HAVE_NCCL)
#include "cuda/nccl_communicator.h"
#endif

namespace quantd::engine {
namespace {

// The hidden states of all ranks: rank r's blocks are a contiguous run, in rank order. A rank
// given no block (fewer blocks than ranks, e.g. a short evaluation text) holds none.
class ShardedActivations : public Activations {
 public:
  ShardedActivations(std::vector<std::unique_ptr<Activations>> shards, int64_t blocks, int64_t len)
      : shards_(std::move(shards)), blocks_(blocks), len_(len) {}
  int64_t num_blocks() const override { return blocks_; }
  int64_t block_len() const override { return len_; }
  Activations* shard(int rank) const { return shards_[static_cast<size_t>(rank)].get(); }

 private:
  std::vector<std::unique_ptr<Activations>> shards_;
  int64_t blocks_, len_;
};

// Rank r's run of `items` (blocks, or the targets that go with them).
template <typename T>
std::vector<T> RankSlice(const std::vector<T>& items, int ranks, int rank) {
  const int64_t n = static_cast<int64_t>(items.size());
  const int64_t first = memory_plan::RankFirstBlock(n, ranks, rank);
  const int64_t count = memory_plan::RankBlocks(n, ranks, rank);
  return std::vector<T>(items.begin() + first, items.begin() + first + count);
}

class DataParallelBackend : public Backend {
 public:
  DataParallelBackend(std::vector<std::unique_ptr<Communicator>> comms,
                      std::vector<std::unique_ptr<Backend>> ranks)
      : comms_(std::move(comms)), ranks_(std::move(ranks)) {}

  std::string_view name() const override { return ranks_.front()->name(); }

  absl::StatusOr<std::unique_ptr<Activations>> Embed(
      const Tensor& embedding, const std::vector<std::vector<int32_t>>& blocks) override {
    QUANTD_ASSIGN_OR_RETURN(const int64_t len, UniformBlockLength(blocks));
    std::vector<std::unique_ptr<Activations>> shards(ranks_.size());
    QUANTD_RETURN_IF_ERROR(RunRanks([&](int r) -> absl::Status {
      std::vector<std::vector<int32_t>> mine = RankSlice(blocks, size(), r);
      if (mine.empty()) return absl::OkStatus();
      QUANTD_ASSIGN_OR_RETURN(shards[static_cast<size_t>(r)], Rank(r).Embed(embedding, mine));
      return absl::OkStatus();
    }));
    if (first_embed_blocks_ == 0) {  // the calibration (the pipeline embeds it first)
      first_embed_blocks_ = static_cast<int64_t>(blocks.size());
    }
    return std::make_unique<ShardedActivations>(std::move(shards),
                                                static_cast<int64_t>(blocks.size()), len);
  }

  absl::StatusOr<QuantizedLayer> QuantizeLayer(const ModelConfig& config,
                                               const LayerQuantSettings& settings,
                                               LayerWeights weights, Activations* hidden,
                                               const CancellationToken* cancel) override {
    const auto* sharded = static_cast<const ShardedActivations*>(hidden);
    for (int r = 0; r < size(); ++r) {
      if (sharded->shard(r) == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat(
            "gpus: the calibration has ", sharded->num_blocks(), " blocks, fewer than the ", size(),
            " GPUs it is split across (each needs at least one block)"));
      }
    }
    // The held-out states set on this backend (Backend::SetHeldOut) reach the ranks as their
    // shares: each rank forwards, and compares on, its own held-out blocks (none: no states).
    for (int r = 0; r < size(); ++r) {
      auto shard = [r](Activations* a) -> Activations* {
        return a == nullptr ? nullptr : static_cast<ShardedActivations*>(a)->shard(r);
      };
      HeldOutStates mine = held_out();
      mine.float_hidden = shard(mine.float_hidden);
      mine.quantized_hidden = shard(mine.quantized_hidden);
      Rank(r).SetHeldOut(mine.float_hidden == nullptr ? HeldOutStates{} : mine);
    }
    // Each rank owns (and scales, clips) its copy of the layer: read once from disk, copied here.
    std::vector<LayerWeights> per_rank(ranks_.size());
    for (size_t r = per_rank.size(); r-- > 1;) per_rank[r] = weights;
    per_rank[0] = std::move(weights);
    std::vector<absl::StatusOr<QuantizedLayer>> layers(ranks_.size(),
                                                       absl::UnknownError("not run"));
    QUANTD_RETURN_IF_ERROR(RunRanks([&](int r) -> absl::Status {
      const size_t i = static_cast<size_t>(r);
      layers[i] = Rank(r).QuantizeLayer(config, settings, std::move(per_rank[i]), sharded->shard(r),
                                        cancel);
      return layers[i].status();
    }));
    for (int r = 1; r < size(); ++r) {
      QUANTD_RETURN_IF_ERROR(SameDecisions(*layers[0], *layers[static_cast<size_t>(r)], r));
    }
    return std::move(*layers[0]);
  }

  bool ReadsLayerSources() const override {
    return std::all_of(ranks_.begin(), ranks_.end(),
                       [](const auto& rank) { return rank->ReadsLayerSources(); });
  }

  void StageLayer(const ModelConfig& config, DType md, const LayerWeights& weights) override {
    for (auto& rank : ranks_) rank->StageLayer(config, md, weights);
  }

  absl::Status ForwardLayer(const ModelConfig& config, DType md, const LayerWeights& weights,
                            Activations* hidden) override {
    const auto* sharded = static_cast<const ShardedActivations*>(hidden);
    return RunRanks([&](int r) -> absl::Status {
      if (sharded->shard(r) == nullptr) return absl::OkStatus();
      return Rank(r).ForwardLayer(config, md, weights, sharded->shard(r));
    });
  }

  absl::StatusOr<double> NextTokenNll(const ModelConfig& config, DType md, const Tensor& final_norm,
                                      const Tensor& lm_head, const Activations& hidden,
                                      const std::vector<std::vector<int32_t>>& targets) override {
    const auto& sharded = static_cast<const ShardedActivations&>(hidden);
    std::vector<double> nll(ranks_.size(), 0.0);
    QUANTD_RETURN_IF_ERROR(RunRanks([&](int r) -> absl::Status {
      if (sharded.shard(r) == nullptr) return absl::OkStatus();
      QUANTD_ASSIGN_OR_RETURN(
          nll[static_cast<size_t>(r)],
          Rank(r).NextTokenNll(config, md, final_norm, lm_head, *sharded.shard(r),
                               RankSlice(targets, size(), r)));
      return absl::OkStatus();
    }));
    double total = 0.0;
    for (double v : nll) total += v;
    return total;
  }

  // Rank 0's: every GPU runs the same plan for (at most) its share of the calibration tokens.
  std::optional<DeviceMemoryReport> DeviceMemory(const ModelConfig& config, DType md,
                                                 int64_t tokens) override {
    if (first_embed_blocks_ > 0) {
      tokens =
          tokens / first_embed_blocks_ * memory_plan::BlocksPerRank(first_embed_blocks_, size());
    }
    return Rank(0).DeviceMemory(config, md, tokens);
  }

 private:
  int size() const { return static_cast<int>(ranks_.size()); }
  Backend& Rank(int r) { return *ranks_[static_cast<size_t>(r)]; }

  // Runs fn(r) for every rank at once (rank 0 on this thread). The first rank to fail aborts the
  // group, so no rank stays blocked in a collective; the lowest failing rank's error is returned.
  absl::Status RunRanks(const std::function<absl::Status(int)>& fn) {
    std::vector<absl::Status> status(ranks_.size());
    auto run = [&](int r) {
      status[static_cast<size_t>(r)] = fn(r);
      if (!status[static_cast<size_t>(r)].ok()) {
        comms_[static_cast<size_t>(r)]->Abort(status[static_cast<size_t>(r)]);
      }
    };
    std::vector<std::thread> threads;
    for (int r = 1; r < size(); ++r) threads.emplace_back(run, r);
    run(0);
    for (std::thread& t : threads) t.join();
    for (const absl::Status& s : status) {
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }

  // Every rank must have chosen rank 0's ratios and clips: the reductions make them equal by
  // construction; a difference is a bug, never a checkpoint.
  static absl::Status SameDecisions(const QuantizedLayer& a, const QuantizedLayer& b, int rank) {
    bool same = a.scaling.size() == b.scaling.size() && a.clips.size() == b.clips.size();
    for (size_t i = 0; same && i < a.scaling.size(); ++i) {
      same = a.scaling[i].ratio_index == b.scaling[i].ratio_index;
    }
    for (size_t i = 0; same && i < a.clips.size(); ++i) {
      same = a.clips[i].shrink_index == b.clips[i].shrink_index;
    }
    if (same) return absl::OkStatus();
    return absl::InternalError(absl::StrCat(
        "data-parallel rank ", rank, " took other AWQ decisions than rank 0 on the same layer"));
  }

  std::vector<std::unique_ptr<Communicator>> comms_;  // outlive the ranks that use them
  std::vector<std::unique_ptr<Backend>> ranks_;
  int64_t first_embed_blocks_ = 0;
};

}  // namespace

std::unique_ptr<Backend> CreateDataParallelBackend(
    std::vector<std::unique_ptr<Communicator>> comms,
    const std::function<std::unique_ptr<Backend>(Communicator*)>& make_rank) {
  std::vector<std::unique_ptr<Backend>> ranks;
  for (auto& comm : comms) ranks.push_back(make_rank(comm.get()));
  return std::make_unique<DataParallelBackend>(std::move(comms), std::move(ranks));
}

absl::StatusOr<std::unique_ptr<Backend>> CreateDataParallelBackend(BackendKind kind, int ranks) {
  if (ranks < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("gpus: expected a positive number of GPUs, got ", ranks));
  }
  if (BackendNameFor(kind) == "cpu") {
    return CreateDataParallelBackend(CreateInProcessGroup(ranks),
                                     [](Communicator* comm) { return CreateCpuBackend(comm); });
  }
  if (ranks == 1) {  // one device: the CUDA backend needs no collective
    QUANTD_ASSIGN_OR_RETURN(std::unique_ptr<Backend> device, CreateBackend(kind));
    std::vector<std::unique_ptr<Backend>> one;
    one.push_back(std::move(device));
    return std::unique_ptr<Backend>(
        std::make_unique<DataParallelBackend>(CreateInProcessGroup(1), std::move(one)));
  }
#if defined(QUANTD_HAVE_CUDA) && defined(QUANTD_HAVE_NCCL)
  // One CUDA backend per device, joined by NCCL.
  QUANTD_ASSIGN_OR_RETURN(std::vector<std::unique_ptr<Communicator>> comms, CreateNcclGroup(ranks));
  std::vector<std::unique_ptr<Backend>> devices;
  for (int r = 0; r < ranks; ++r) {
    CudaBackendOptions options;
    options.device = r;
    options.comm = comms[static_cast<size_t>(r)].get();
    QUANTD_ASSIGN_OR_RETURN(std::unique_ptr<Backend> device, CreateCudaBackend(options));
    devices.push_back(std::move(device));
  }
  return std::unique_ptr<Backend>(
      std::make_unique<DataParallelBackend>(std::move(comms), std::move(devices)));
#else
  return absl::FailedPreconditionError(absl::StrCat(
      "gpus: ", ranks,
      " GPUs asked for, but this quantize-awq was built without NCCL's header (nccl.h), so its "
      "CUDA backend runs a job on one GPU (docs/engine.md, \"Multi-GPU\")"));
#endif
}

}  // namespace quantd::engine
