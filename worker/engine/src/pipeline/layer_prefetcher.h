// LayerPrefetcher: reads the decoder layers of a checkpoint in order, one layer ahead of the
// backend. While the backend quantizes layer i, a background thread reads layer i+1 from the
// memory-mapped checkpoint (into float32, or only as far as the backend needs: the CUDA backend
// streams Linears from the mapping itself), so the read leaves the critical path and at most two
// layers of weights are on the host at a time (the one being quantized and the next). Layers too
// large for two (memory_plan::LayersInFlight) are held one at a time: the read of layer i+1
// starts once layer i's host copy is gone (a backend with its own copy of the layer, the CUDA
// backend once it has uploaded it, drops it early: ReleaseLinearWeights).
#ifndef QUANTD_ENGINE_PIPELINE_LAYER_PREFETCHER_H_
#define QUANTD_ENGINE_PIPELINE_LAYER_PREFETCHER_H_

#include <functional>
#include <future>
#include <memory>

#include "absl/status/statusor.h"
#include "io/checkpoint_reader.h"
#include "model/layer_weights.h"
#include "model/model_config.h"

namespace quantd::engine {

class LayerPrefetcher {
 public:
  // Starts reading layer 0 at once. `reader` and `config` must outlive the prefetcher. Layers are
  // read with their Linears left in the checkpoint (CheckpointReader::LoadLayerSources); `on_read`
  // runs on the reading thread with each, before Next() can return it: the pipeline reads the
  // Linears there (MaterializeLayer) or stages the layer on the backend's device. Without it
  // the Linears are read (Next() returns LoadLayer's layers); its error is the layer's.
  // `layers_in_flight` (memory_plan::LayersInFlight): 2 reads layer i+1 while layer i is worked on;
  // 1 reads it only once layer i, as Next() returned it, has released its host_lease (the layer and
  // its copies destroyed, or ReleaseLinearWeights) or Next() is called again.
  LayerPrefetcher(const CheckpointReader* reader, const ModelConfig* config,
                  std::function<absl::Status(LayerWeights*)> on_read = nullptr,
                  int layers_in_flight = 2);
  // Waits for a read in flight (it only touches the reader); a read still waiting for the layer
  // before it to be released is not made.
  ~LayerPrefetcher();
  LayerPrefetcher(const LayerPrefetcher&) = delete;
  LayerPrefetcher& operator=(const LayerPrefetcher&) = delete;

  // The next layer (0, 1, ... in order); starts reading the one after it before returning (one
  // layer in flight: once the returned one is released).
  absl::StatusOr<LayerWeights> Next();

  // Seconds the caller waited in Next() for a read that had not finished, and seconds the reads
  // (on_read included) took in the background, summed.
  double wait_seconds() const { return wait_seconds_; }
  double read_seconds() const { return read_seconds_; }

 private:
  struct Read {
    absl::StatusOr<LayerWeights> weights;
    double seconds = 0.0;
  };
  class Gate;
  // Reads `layer` in the background, once `after` (if any) opens.
  void Start(int layer, std::shared_ptr<Gate> after);

  const CheckpointReader* reader_;
  const ModelConfig* config_;
  std::function<absl::Status(LayerWeights*)> on_read_;
  int layers_in_flight_;
  int next_ = 0;
  std::future<Read> pending_;
  std::shared_ptr<Gate> gate_;  // what the pending read waits for (one layer in flight)
  double wait_seconds_ = 0.0;
  double read_seconds_ = 0.0;
};

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_PIPELINE_LAYER_PREFETCHER_H_
