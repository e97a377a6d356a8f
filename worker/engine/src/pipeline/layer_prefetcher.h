// LayerPrefetcher: reads the decoder layers of a checkpoint in order, one layer ahead of the
// backend. While the backend quantizes layer i, a background thread reads layer i+1 from the
// memory-mapped checkpoint and converts it to float32, so the read leaves the critical path and
// at most two layers of weights are on the host at a time (the one being quantized and the next).
#ifndef QUANTD_ENGINE_PIPELINE_LAYER_PREFETCHER_H_
#define QUANTD_ENGINE_PIPELINE_LAYER_PREFETCHER_H_

#include <functional>
#include <future>

#include "absl/status/statusor.h"
#include "io/checkpoint_reader.h"
#include "model/layer_weights.h"
#include "model/model_config.h"

namespace quantd::engine {

class LayerPrefetcher {
 public:
  // Starts reading layer 0 at once. `reader` and `config` must outlive the prefetcher. `on_read`
  // (optional) runs on the reading thread with each layer read, before Next() can return it (the
  // pipeline stages it on the backend's device there).
  LayerPrefetcher(const CheckpointReader* reader, const ModelConfig* config,
                  std::function<void(const LayerWeights&)> on_read = nullptr);
  // Waits for a read in flight (it only touches the reader).
  ~LayerPrefetcher();
  LayerPrefetcher(const LayerPrefetcher&) = delete;
  LayerPrefetcher& operator=(const LayerPrefetcher&) = delete;

  // The next layer (0, 1, ... in order); starts reading the one after it before returning.
  absl::StatusOr<LayerWeights> Next();

  // Seconds the caller waited in Next() for a read that had not finished, and seconds the reads
  // took in the background, summed.
  double wait_seconds() const { return wait_seconds_; }
  double read_seconds() const { return read_seconds_; }

 private:
  struct Read {
    absl::StatusOr<LayerWeights> weights;
    double seconds = 0.0;
  };
  void Start(int layer);

  const CheckpointReader* reader_;
  const ModelConfig* config_;
  std::function<void(const LayerWeights&)> on_read_;
  int next_ = 0;
  std::future<Read> pending_;
  double wait_seconds_ = 0.0;
  double read_seconds_ = 0.0;
};

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_PIPELINE_LAYER_PREFETCHER_H_
