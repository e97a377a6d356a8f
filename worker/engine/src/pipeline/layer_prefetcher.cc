#include "pipeline/layer_prefetcher.h"

#include <condition_variable>
#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "io/source_values.h"

namespace quantd::engine {

// Opens when the layer handed out before a read is let go of; the read waits for it. Cancelled
// when the prefetcher goes first: the read is then not made.
class LayerPrefetcher::Gate {
 public:
  void Open() { Set(&open_); }
  void Cancel() { Set(&cancelled_); }
  // True once open; false if cancelled first.
  bool Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return open_ || cancelled_; });
    return open_;
  }

 private:
  void Set(bool* flag) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      *flag = true;
    }
    cv_.notify_all();
  }
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false, cancelled_ = false;
};

LayerPrefetcher::LayerPrefetcher(const CheckpointReader* reader, const ModelConfig* config,
                                 std::function<absl::Status(LayerWeights*)> on_read,
                                 int layers_in_flight)
    : reader_(reader),
      config_(config),
      on_read_(std::move(on_read)),
      layers_in_flight_(layers_in_flight) {
  Start(0, nullptr);
}

LayerPrefetcher::~LayerPrefetcher() {
  if (gate_ != nullptr) gate_->Cancel();
  if (pending_.valid()) pending_.wait();
}

void LayerPrefetcher::Start(int layer, std::shared_ptr<Gate> after) {
  if (layer >= config_->num_hidden_layers) return;
  gate_ = after;
  pending_ = std::async(std::launch::async, [this, layer, after = std::move(after)] {
    if (after != nullptr && !after->Wait()) {
      return Read{absl::CancelledError(absl::StrCat("layer ", layer, " was not read"))};
    }
    const absl::Time start = absl::Now();
    Read r{reader_->LoadLayerSources(*config_, layer)};
    if (r.weights.ok()) {
      absl::Status s = on_read_ != nullptr ? on_read_(&*r.weights) : MaterializeLayer(&*r.weights);
      if (!s.ok()) r.weights = std::move(s);
    }
    r.seconds = absl::ToDoubleSeconds(absl::Now() - start);
    return r;
  });
}

absl::StatusOr<LayerWeights> LayerPrefetcher::Next() {
  if (!pending_.valid()) {
    return absl::OutOfRangeError(
        absl::StrCat("no layer ", next_, " to read: the model has ", config_->num_hidden_layers));
  }
  // The caller asks for the next layer: it is done with the one it had (were it still held, the
  // read would otherwise never start).
  if (gate_ != nullptr) gate_->Open();
  const absl::Time start = absl::Now();
  Read r = pending_.get();
  wait_seconds_ += absl::ToDoubleSeconds(absl::Now() - start);
  read_seconds_ += r.seconds;
  ++next_;
  if (r.weights.ok()) {
    std::shared_ptr<Gate> gate;
    if (layers_in_flight_ < 2) {
      gate = std::make_shared<Gate>();
      r.weights->host_lease = std::shared_ptr<void>(gate.get(), [gate](void*) { gate->Open(); });
    }
    Start(next_, std::move(gate));
  }
  return std::move(r.weights);
}

}  // namespace quantd::engine
