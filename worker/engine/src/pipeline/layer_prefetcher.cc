#include "pipeline/layer_prefetcher.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace quantd::engine {

LayerPrefetcher::LayerPrefetcher(const CheckpointReader* reader, const ModelConfig* config,
                                 std::function<void(const LayerWeights&)> on_read)
    : reader_(reader), config_(config), on_read_(std::move(on_read)) {
  Start(0);
}

LayerPrefetcher::~LayerPrefetcher() {
  if (pending_.valid()) pending_.wait();
}

void LayerPrefetcher::Start(int layer) {
  if (layer >= config_->num_hidden_layers) return;
  pending_ = std::async(std::launch::async, [this, layer] {
    const absl::Time start = absl::Now();
    Read r{reader_->LoadLayer(*config_, layer)};
    r.seconds = absl::ToDoubleSeconds(absl::Now() - start);
    if (r.weights.ok() && on_read_ != nullptr) on_read_(*r.weights);
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
