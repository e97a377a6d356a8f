#include "pipeline/layer_prefetcher.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace quantd::engine {

LayerPrefetcher::LayerPrefetcher(const CheckpointReader* reader, const ModelConfig* config)
    : reader_(reader), config_(config) {
  Start(0);
}

LayerPrefetcher::~LayerPrefetcher() {
  if (pending_.valid()) pending_.wait();
}

void LayerPrefetcher::Start(int layer) {
  if (layer >= config_->num_hidden_layers) return;
  pending_ = std::async(std::launch::async, [reader = reader_, config = config_, layer] {
    const absl::Time start = absl::Now();
    Read r{reader->LoadLayer(*config, layer)};
    r.seconds = absl::ToDoubleSeconds(absl::Now() - start);
    return r;
  });
}

absl::StatusOr<LayerWeights> LayerPrefetcher::Next() {
  if (!pending_.valid()) {
    return absl::OutOfRangeError(
        absl::StrCat("no layer ", next_, " to read: the model has ", config_->num_hidden_layers));
  }
  const absl::Time start = absl::Now();
  Read r = pending_.get();
  wait_seconds_ += absl::ToDoubleSeconds(absl::Now() - start);
  read_seconds_ += r.seconds;
  ++next_;
  if (r.weights.ok()) Start(next_);
  return std::move(r.weights);
}

}  // namespace quantd::engine
