// quantd-metrics-fixture: a stand-in for quantd or quantd-worker that serves the real
// ServerMetrics or WorkerMetrics through the real EndpointServer, plays a fixed sequence of job
// activity over a few seconds, then holds its values until SIGTERM. The Prometheus integration
// test scrapes it and knows exactly which values a query must return (see kJobs below).
//
//   quantd-metrics-fixture --role=server|worker --address=127.0.0.1:0 --port_file=PATH
//                          [--activity_seconds=2]
//   quantd-metrics-fixture --print_series_names
//       prints every series name ServerMetrics and WorkerMetrics can expose, one per line (the
//       dashboard and alert-rule checks compare PromQL against it).
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <string_view>
#include <thread>

#include "http/endpoint_server.h"
#include "metrics/quantd_metrics.h"

namespace {

using quantd::metrics::JobOutcome;

// The scripted jobs: 10 submitted; 8 succeed, 1 fails, 1 is cancelled. Each successful job runs
// 4 layers of 1.5 s and 4096 calibration tokens per layer on the worker.
constexpr int kJobs = 10;
constexpr int kLayersPerJob = 4;
constexpr double kLayerSeconds = 1.5;
constexpr int kTokensPerLayer = 4096;

JobOutcome OutcomeOf(int job) {
  if (job == 3) return JobOutcome::kFailed;
  if (job == 7) return JobOutcome::kCancelled;
  return JobOutcome::kSucceeded;
}

void PlayServer(quantd::metrics::ServerMetrics& m, std::chrono::milliseconds step) {
  m.workers_idle.Set(1);
  m.gpus_free.Set(1);
  for (int job = 0; job < kJobs; ++job) {
    m.jobs_submitted.Increment();
    m.ObserveGrpcRequest("SubmitJob", "OK", 0.002);
    m.ObserveStoreOperation("insert_job", 0.0004);
    m.job_queue_wait_seconds.Observe(0.3 * job);
    m.job_attempts.Increment();
    m.jobs_running.Set(1);
    m.watchers.Increment();
    std::this_thread::sleep_for(step);
    m.jobs_running.Set(0);
    m.watchers.Decrement();
    m.JobsFinished(OutcomeOf(job)).Increment();
    m.JobDuration(OutcomeOf(job)).Observe(kLayersPerJob * kLayerSeconds);
  }
  m.job_requeues.Increment();
  m.ObserveGrpcRequest("GetJob", "NOT_FOUND", 0.0005);
}

void PlayWorker(quantd::metrics::WorkerMetrics& m, std::chrono::milliseconds step) {
  quantd::metrics::Gauge* used = *m.gpu_memory_used_bytes.Add({{"gpu", "0"}});
  quantd::metrics::Gauge* peak = *m.gpu_memory_peak_bytes.Add({{"gpu", "0"}});
  m.connected.Set(1);
  for (int job = 0; job < kJobs; ++job) {
    m.jobs_running.Set(1);
    if (OutcomeOf(job) == JobOutcome::kSucceeded) {
      for (int layer = 0; layer < kLayersPerJob; ++layer) {
        m.layer_duration_seconds.Observe(kLayerSeconds);
        m.tokens_processed.Increment(kTokensPerLayer);
        used->Set(1e9 + layer * 2.5e8);
        peak->SetToMax(used->Value());
        m.job_progress_ratio.Set((layer + 1.0) / kLayersPerJob);
      }
    }
    std::this_thread::sleep_for(step);
    m.jobs_running.Set(0);
    (*m.jobs_finished.Add({{"outcome", std::string(JobOutcomeName(OutcomeOf(job)))}}))->Increment();
  }
  used->Set(0);
  m.job_progress_ratio.Set(0);
}

int PrintSeriesNames() {
  quantd::metrics::Registry registry;
  auto server = quantd::metrics::ServerMetrics::Create(registry);
  auto worker = quantd::metrics::WorkerMetrics::Create(registry);
  if (!server.ok() || !worker.ok()) {
    std::fprintf(stderr, "quantd-metrics-fixture: %s %s\n", server.status().ToString().c_str(),
                 worker.status().ToString().c_str());
    return 1;
  }
  for (const std::string& name : registry.SeriesNames()) std::printf("%s\n", name.c_str());
  return 0;
}

std::string_view FlagValue(std::string_view arg, std::string_view name) {
  if (arg.substr(0, name.size()) == name && arg.size() > name.size() && arg[name.size()] == '=') {
    return arg.substr(name.size() + 1);
  }
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  std::string role, address = "127.0.0.1:0", port_file;
  double activity_seconds = 2;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i], v;
    if (arg == "--print_series_names") return PrintSeriesNames();
    if (!(v = FlagValue(arg, "--role")).empty()) {
      role = v;
    } else if (!(v = FlagValue(arg, "--address")).empty()) {
      address = v;
    } else if (!(v = FlagValue(arg, "--port_file")).empty()) {
      port_file = v;
    } else if (!(v = FlagValue(arg, "--activity_seconds")).empty()) {
      activity_seconds = std::stod(std::string(v));
    } else {
      std::fprintf(stderr, "quantd-metrics-fixture: unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  if (role != "server" && role != "worker") {
    std::fprintf(stderr, "quantd-metrics-fixture: --role must be server or worker\n");
    return 2;
  }
  // Block the stop signals before any thread starts so that only sigwait() below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  quantd::metrics::Registry registry;
  std::unique_ptr<quantd::metrics::ServerMetrics> server_metrics;
  std::unique_ptr<quantd::metrics::WorkerMetrics> worker_metrics;
  absl::Status created;
  if (role == "server") {
    auto m = quantd::metrics::ServerMetrics::Create(registry);
    created = m.status();
    if (m.ok()) server_metrics = *std::move(m);
  } else {
    auto m = quantd::metrics::WorkerMetrics::Create(registry);
    created = m.status();
    if (m.ok()) worker_metrics = *std::move(m);
  }
  if (!created.ok()) {
    std::fprintf(stderr, "quantd-metrics-fixture: %s\n", created.ToString().c_str());
    return 1;
  }
  auto endpoint = quantd::http::EndpointServer::Start(
      {.address = address, .address_flag = "--address", .registry = &registry, .readiness = {}});
  if (!endpoint.ok()) {
    std::fprintf(stderr, "quantd-metrics-fixture: %s\n", endpoint.status().ToString().c_str());
    return 1;
  }
  if (!port_file.empty()) {
    std::string temporary = port_file + ".tmp";
    std::ofstream(temporary) << (*endpoint)->port() << "\n";
    std::rename(temporary.c_str(), port_file.c_str());  // readers never see a partial file
  }
  std::fprintf(stderr, "quantd-metrics-fixture: %s metrics at %s/metrics\n", role.c_str(),
               (*endpoint)->url().c_str());

  auto step = std::chrono::milliseconds(static_cast<int>(activity_seconds * 1000 / kJobs));
  std::thread activity([&] {
    if (server_metrics) PlayServer(*server_metrics, step);
    if (worker_metrics) PlayWorker(*worker_metrics, step);
  });
  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  activity.join();
  (*endpoint)->Stop();
  return 0;
}
