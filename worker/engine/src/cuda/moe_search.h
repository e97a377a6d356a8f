// The scale search's MoE-specific pieces on the GPU: the trials of the group that scales every
// expert's gate and up projections (AutoAWQ inspects the whole sparse block, with its routing, on
// every token), and the routing statistics of the report.
#ifndef QUANTD_ENGINE_CUDA_MOE_SEARCH_H_
#define QUANTD_ENGINE_CUDA_MOE_SEARCH_H_

#include <vector>

#include "absl/status/statusor.h"
#include "backend/backend.h"
#include "cuda/awq_layer.h"
#include "cuda/device_layer.h"

namespace quantd::engine::cuda {

// Adds the summed squared error of the sparse block's output, rerun on its captured input and
// routing with every grid point's trial gate/up weights (group.linears, in `linears`) against the
// captured block output, to losses[kScaleGridPoints]; returns the divisor (tokens · hidden).
// The routing is the float forward's: the router is not in the group and AutoAWQ reruns the
// block, whose router sees the same input. Queued only.
absl::StatusOr<double> MoeTrialLosses(const AwqLayerRun& run, const ScalingGroup& group,
                                      const std::vector<DeviceLinear*>& linears,
                                      const LayerGeometry& geo, const float* s_dev, double* losses,
                                      AwqWorkspace* ws);

// Routed rows per expert and the experts under `min_tokens` (MoeLayerStats of the report).
MoeLayerStats RoutingStats(const DeviceRouting& routing, int64_t min_tokens);

}  // namespace quantd::engine::cuda

#endif  // QUANTD_ENGINE_CUDA_MOE_SEARCH_H_
