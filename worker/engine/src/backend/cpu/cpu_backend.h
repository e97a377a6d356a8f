// The CPU reference backend: float32 host tensors, BLAS GEMMs, AutoAWQ's search per layer.
#ifndef QUANTD_ENGINE_BACKEND_CPU_CPU_BACKEND_H_
#define QUANTD_ENGINE_BACKEND_CPU_CPU_BACKEND_H_

#include <memory>

#include "backend/backend.h"
#include "parallel/communicator.h"

namespace quantd::engine {

// Host activations [blocks · len, hidden]; exposed so tests can read the hidden states.
class CpuActivations : public Activations {
 public:
  CpuActivations(Tensor hidden, int64_t blocks, int64_t len)
      : hidden_(std::move(hidden)), blocks_(blocks), len_(len) {}
  int64_t num_blocks() const override { return blocks_; }
  int64_t block_len() const override { return len_; }
  Tensor& hidden() { return hidden_; }
  const Tensor& hidden() const { return hidden_; }

 private:
  Tensor hidden_;
  int64_t blocks_;
  int64_t len_;
};

// `comm`: the data-parallel group this backend is one rank of (parallel/communicator.h; must
// outlive it); null = a single rank holding every calibration row.
std::unique_ptr<Backend> CreateCpuBackend(Communicator* comm = nullptr);

// Final norm and lm_head logits [tokens, vocab] of host activations (tests and evaluation).
Tensor CpuLogits(const ModelConfig& config, DType md, const Tensor& final_norm,
                 const Tensor& lm_head, const Tensor& hidden);

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_BACKEND_CPU_CPU_BACKEND_H_
