// quantd-metric-series-names: prints every series name quantd and quantd-worker can expose (a
// histogram "x" as x_bucket, x_sum and x_count), one per line, from the same declarations the
// processes register (common/metrics/quantd_metrics.h). The dashboard and alert-rule checks
// (tests/ops/manifests/check-deploy.mjs promql) compare their PromQL against it.
#include <cstdio>

#include "metrics/quantd_metrics.h"

int main() {
  quantd::metrics::Registry registry;
  auto server = quantd::metrics::ServerMetrics::Create(registry);
  auto worker = quantd::metrics::WorkerMetrics::Create(registry);
  if (!server.ok() || !worker.ok()) {
    std::fprintf(stderr, "quantd-metric-series-names: %s %s\n", server.status().ToString().c_str(),
                 worker.status().ToString().c_str());
    return 1;
  }
  for (const std::string& name : registry.SeriesNames()) std::printf("%s\n", name.c_str());
  return 0;
}
