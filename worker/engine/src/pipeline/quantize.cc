// Quantize(): the engine's pipeline. Placeholder until the engine lands (issue 4).
#include "quantd/engine/quantize.h"

namespace quantd::engine {

absl::StatusOr<QuantizeResult> Quantize(const QuantizeOptions& options, EngineObserver* observer,
                                        const CancellationToken* cancel) {
  return absl::UnimplementedError("the AWQ engine is not implemented yet (issue 4)");
}

}  // namespace quantd::engine
