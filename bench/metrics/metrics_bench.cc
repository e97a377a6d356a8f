// What an update costs on the hot path, from one thread and from many sharing one series, what a
// labelled lookup costs, and how long a scrape of the full quantd metric set takes.
#include <string>

#include "benchmark/benchmark.h"
#include "metrics/quantd_metrics.h"
#include "metrics/registry.h"

namespace quantd::metrics {
namespace {

Registry& SharedRegistry() {
  static Registry* registry = new Registry;
  return *registry;
}

Counter& SharedCounter() {
  static Counter* counter = *(*SharedRegistry().AddCounterFamily("bench_ops_total", "x"))->Add({});
  return *counter;
}

Histogram& SharedHistogram() {
  static Histogram* histogram =
      *(*SharedRegistry().AddHistogramFamily(
            "bench_latency_seconds", "x", {},
            {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}))
           ->Add({});
  return *histogram;
}

void BM_CounterIncrement(benchmark::State& state) {
  Counter& counter = SharedCounter();
  for (auto _ : state) counter.Increment();
}
BENCHMARK(BM_CounterIncrement)->ThreadRange(1, 8);

void BM_GaugeSet(benchmark::State& state) {
  Gauge gauge;
  double v = 0;
  for (auto _ : state) gauge.Set(v += 1);
}
BENCHMARK(BM_GaugeSet);

void BM_HistogramObserve(benchmark::State& state) {
  Histogram& histogram = SharedHistogram();
  double v = 0;
  for (auto _ : state) {
    histogram.Observe(v);
    v = v > 10 ? 0 : v + 0.013;
  }
}
BENCHMARK(BM_HistogramObserve)->ThreadRange(1, 8);

// A labelled child looked up on every call (what a gRPC interceptor does per request).
void BM_FamilyAddExistingChild(benchmark::State& state) {
  static Family<Counter>* family =
      *SharedRegistry().AddCounterFamily("bench_calls_total", "x", {"method", "code"});
  Labels labels{{"method", "SubmitJob"}, {"code", "OK"}};
  for (auto _ : state) benchmark::DoNotOptimize(*family->Add(labels));
}
BENCHMARK(BM_FamilyAddExistingChild)->ThreadRange(1, 8);

// A scrape of ServerMetrics + WorkerMetrics with 10 gRPC methods x 4 codes and 6 store operations.
void BM_SerializeQuantdMetrics(benchmark::State& state) {
  Registry registry;
  auto server = ServerMetrics::Create(registry);
  auto worker = WorkerMetrics::Create(registry);
  if (!server.ok() || !worker.ok()) {
    state.SkipWithError("metrics declaration failed");
    return;
  }
  for (int m = 0; m < 10; ++m) {
    for (const char* code : {"OK", "NOT_FOUND", "INVALID_ARGUMENT", "CANCELLED"}) {
      (*server)->ObserveGrpcRequest("Method" + std::to_string(m), code, 0.001 * m);
    }
  }
  for (int op = 0; op < 6; ++op) (*server)->ObserveStoreOperation("op" + std::to_string(op), 1e-4);
  size_t bytes = 0;
  for (auto _ : state) {
    std::string text = registry.Serialize();
    bytes = text.size();
    benchmark::DoNotOptimize(text);
  }
  state.counters["bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_SerializeQuantdMetrics);

}  // namespace
}  // namespace quantd::metrics
