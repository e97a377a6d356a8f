// quantd-worker: connects to quantd, advertises its GPUs (or CPU slots) and runs each assigned job
// in its own quantize-awq child process. Serves /metrics, /healthz and /readyz (ready: connected to
// quantd) on --metrics-address. Configuration: `quantd-worker --help`; every flag also reads
// QUANTD_<FLAG> (upper case, '-' as '_'), except --server, which reads QUANTD_ADDRESS as quantctl
// does (tests/ops/flag_docs_test.cc holds both to this and to docs/service.md).
#include <openssl/crypto.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "credentials/client_channel.h"
#include "gpu_memory_monitor.h"
#include "gpu_probe.h"
#include "http/endpoint_server.h"
#include "logging/logging.h"
#include "metrics/quantd_metrics.h"
#include "worker_agent.h"
#include "worker_metrics_recorder.h"

namespace {

struct ProcessFlags {
  std::string log_level = "info";
  std::string log_format = "text";
  std::string metrics_address = "127.0.0.1:7452";
  bool no_gpus = false;
  std::string token_file;
  std::string metrics_tls_cert;
  std::string metrics_tls_key;
  std::string metrics_token_file;
  std::string metrics_token;
};

// Parses flags into `options`; returns an exit code when the process should end now.
std::optional<int> ParseFlags(int argc, char** argv, quantd::worker::WorkerOptions* options,
                              ProcessFlags* flags) {
  CLI::App app{"quantd-worker: runs quantization jobs for quantd", "quantd-worker"};
  app.option_defaults()->always_capture_default()->multi_option_policy(
      CLI::MultiOptionPolicy::TakeLast);
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  options->worker_id = host;
  std::error_code ec;
  options->engine =
      (std::filesystem::read_symlink("/proc/self/exe", ec).parent_path() / "quantize-awq").string();
  double grace = 10, max_backoff = 10;
  app.add_option("--server", options->server, "quantd address")->envname("QUANTD_ADDRESS");
  app.add_option("--worker-id", options->worker_id, "Stable id of this worker (default: host name)")
      ->envname("QUANTD_WORKER_ID");
  app.add_option("--engine", options->engine, "quantize-awq executable")->envname("QUANTD_ENGINE");
  app.add_option("--capacity", options->capacity, "Jobs per GPU, or CPU slots without GPUs")
      ->check(CLI::Range(1, 64))
      ->envname("QUANTD_CAPACITY");
  app.add_flag("--no-gpus", flags->no_gpus, "Offer CPU slots even when GPUs are present")
      ->envname("QUANTD_NO_GPUS");
  app.add_option("--cancel-grace-seconds", grace, "SIGTERM-to-SIGKILL grace of a cancelled engine")
      ->check(CLI::Range(0.0, 3600.0))
      ->envname("QUANTD_CANCEL_GRACE_SECONDS");
  app.add_option("--max-backoff-seconds", max_backoff, "Longest wait between reconnects")
      ->check(CLI::Range(0.05, 3600.0))
      ->envname("QUANTD_MAX_BACKOFF_SECONDS");
  app.add_option("--tls-ca", options->tls.ca, "CA certificate (PEM) to verify quantd with: TLS")
      ->envname("QUANTD_TLS_CA");
  app.add_option("--tls-cert", options->tls.cert,
                 "Client certificate (PEM) of this worker's credential (mTLS)")
      ->envname("QUANTD_TLS_CERT");
  app.add_option("--tls-key", options->tls.key, "Its private key (PEM)")->envname("QUANTD_TLS_KEY");
  app.add_option("--tls-server-name", options->tls.server_name,
                 "Name to verify in quantd's certificate (default: the host of --server)")
      ->envname("QUANTD_TLS_SERVER_NAME");
  app.add_option("--token-file", flags->token_file,
                 "File holding this worker's bearer token (or the environment's QUANTD_TOKEN)")
      ->envname("QUANTD_TOKEN_FILE");
  app.add_option("--metrics-tls-cert", flags->metrics_tls_cert,
                 "Serve /metrics, /healthz, /readyz over TLS with this certificate (PEM)")
      ->envname("QUANTD_METRICS_TLS_CERT");
  app.add_option("--metrics-tls-key", flags->metrics_tls_key, "Its private key (PEM)")
      ->envname("QUANTD_METRICS_TLS_KEY");
  app.add_option("--metrics-token-file", flags->metrics_token_file,
                 "/metrics needs \"Authorization: Bearer <the token in this file>\"")
      ->envname("QUANTD_METRICS_TOKEN_FILE");
  app.add_option("--metrics-address", flags->metrics_address,
                 "Address of /metrics, /healthz and /readyz, host:port (port 0: a free one)")
      ->envname("QUANTD_METRICS_ADDRESS");
  app.add_option("--log-level", flags->log_level, "debug|info|warning|error")
      ->check(CLI::IsMember({"debug", "info", "warning", "error"}))
      ->envname("QUANTD_LOG_LEVEL");
  app.add_option("--log-format", flags->log_format, "text|json")
      ->check(CLI::IsMember({"text", "json"}))
      ->envname("QUANTD_LOG_FORMAT");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  options->cancel_grace = absl::Seconds(grace);
  options->max_backoff = absl::Seconds(max_backoff);
  // The token: from --token-file, else QUANTD_TOKEN (never a flag: argv is visible to everyone).
  const char* env_token = std::getenv("QUANTD_TOKEN");
  absl::StatusOr<std::string> token = quantd::credentials::ResolveToken(
      flags->token_file.empty() && env_token != nullptr ? env_token : "", flags->token_file);
  if (!token.ok()) {
    std::fprintf(stderr, "quantd-worker: %s\n", std::string(token.status().message()).c_str());
    return 2;
  }
  options->token = *token;
  options->token_file = flags->token_file;
  unsetenv("QUANTD_TOKEN");  // Not inherited by the engines.
  if (!flags->metrics_token_file.empty()) {
    absl::StatusOr<std::string> metrics_token =
        quantd::credentials::ResolveToken("", flags->metrics_token_file);
    if (!metrics_token.ok()) {
      std::fprintf(stderr, "quantd-worker: --metrics-token-file: %s\n",
                   std::string(metrics_token.status().message()).c_str());
      return 2;
    }
    flags->metrics_token = *metrics_token;
  }
  return std::nullopt;
}

}  // namespace

int main(int argc, char** argv) {
  quantd::worker::WorkerOptions options;
  ProcessFlags flags;
  if (auto code = ParseFlags(argc, argv, &options, &flags)) return *code;
  namespace logging = quantd::logging;
  logging::Configure({logging::ParseLevel(flags.log_level).value_or(logging::Level::kInfo),
                      logging::ParseFormat(flags.log_format).value_or(logging::Format::kText),
                      "quantd-worker"});
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // EngineProcess unblocks them in its children.
  signal(SIGPIPE, SIG_IGN);
  std::string why;
  if (!flags.no_gpus) options.gpus = quantd::worker::ProbeGpus(&why);
  if (options.gpus.empty()) {
    logging::Info(absl::StrCat("no GPU offered (", flags.no_gpus ? "--no-gpus" : why,
                               "): offering ", options.capacity, " CPU slot(s)"));
  }
  std::unique_ptr<quantd::worker::GpuMemoryMonitor> gpu_memory;
  if (!options.gpus.empty()) {
    gpu_memory = quantd::worker::GpuMemoryMonitor::Open(options.gpus, &why);
    if (gpu_memory != nullptr) {
      options.gpu_memory_used = [monitor = gpu_memory.get()] { return monitor->UsedBytes(); };
    } else {
      logging::Warning(absl::StrCat("heartbeats carry no GPU memory use: ", why));
    }
  }

  quantd::metrics::Registry registry;
  auto worker_metrics = quantd::metrics::WorkerMetrics::Create(registry);
  if (!worker_metrics.ok()) {
    logging::Error(absl::StrCat("metrics: ", worker_metrics.status().message()));
    return 1;
  }
  std::vector<int32_t> gpu_indexes;
  for (const quantd::v1::Gpu& gpu : options.gpus) gpu_indexes.push_back(gpu.index());
  quantd::worker::WorkerMetricsRecorder recorder(**worker_metrics, gpu_indexes);
  registry.AddCollectCallback([&recorder] { recorder.Collect(); });
  quantd::http::EndpointOptions endpoint_options;
  endpoint_options.address = flags.metrics_address;
  endpoint_options.address_flag = "--metrics-address";
  endpoint_options.registry = &registry;
  endpoint_options.readiness = [&recorder, server = options.server]() -> absl::Status {
    if (recorder.connected()) return absl::OkStatus();
    return absl::UnavailableError(absl::StrCat("not connected to quantd at ", server));
  };
  endpoint_options.tls_cert = flags.metrics_tls_cert;
  endpoint_options.tls_key = flags.metrics_tls_key;
  if (!flags.metrics_token.empty()) {
    endpoint_options.authorize_metrics =
        [expected = "Bearer " + flags.metrics_token](const std::string& header) {
          // Constant time: the comparison must not reveal how much of a guess was right.
          return header.size() == expected.size() &&
                 CRYPTO_memcmp(header.data(), expected.data(), expected.size()) == 0;
        };
  }
  auto endpoint = quantd::http::EndpointServer::Start(std::move(endpoint_options));
  if (!endpoint.ok()) {
    logging::Error(std::string(endpoint.status().message()));
    return 1;
  }
  logging::Info(
      absl::StrCat("metrics at ", (*endpoint)->url(), "/metrics (health: /healthz, /readyz)"));

  quantd::worker::WorkerAgent agent(options, recorder);
  logging::SetJobLineSink(
      [&agent](logging::Level level, const std::string& job_id, const std::string& message) {
        agent.ForwardJobLog(level, job_id, message);
      });
  std::thread waiter([&] {
    int signal_number = 0;
    sigwait(&signals, &signal_number);
    logging::Info("signal " + std::to_string(signal_number) + ": stopping");
    agent.Stop();
  });
  agent.Run();
  if (waiter.joinable()) {
    pthread_kill(waiter.native_handle(), SIGTERM);  // Wakes sigwait if Run ended on its own.
    waiter.join();
  }
  logging::SetJobLineSink({});
  return 0;
}
