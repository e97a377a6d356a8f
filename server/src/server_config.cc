#include "server_config.h"

#include <cstdlib>

#include "CLI/CLI.hpp"
#include "allowed_roots.h"

namespace quantd::server {

std::optional<int> ParseServerFlags(int argc, char** argv, ServerConfig* config) {
  CLI::App app{"quantd: the quantization service (jobs, scheduler, durable store)", "quantd"};
  app.option_defaults()->always_capture_default()->multi_option_policy(
      CLI::MultiOptionPolicy::TakeLast);
  app.add_option("--listen", config->listen, "Address to serve on, host:port")
      ->envname("QUANTD_LISTEN");
  app.add_option("--port-file", config->port_file, "Write the bound port here once serving")
      ->envname("QUANTD_PORT_FILE");
  app.add_option("--metrics-address", config->metrics_address,
                 "Address of /metrics, /healthz and /readyz, host:port (port 0: a free one; the "
                 "local worker serves its own on the next port)")
      ->envname("QUANTD_METRICS_ADDRESS");
  app.add_option("--state-dir", config->state_dir,
                 "State directory (default $XDG_STATE_HOME/quantd or ~/.local/state/quantd)")
      ->envname("QUANTD_STATE_DIR");
  app.add_option("--store", config->store, "Job store backend")
      ->check(CLI::IsMember({"sqlite", "memory"}))
      ->envname("QUANTD_STORE");
  app.add_option("--store-path", config->store_path, "SQLite file (default <state-dir>/quantd.db)")
      ->envname("QUANTD_STORE_PATH");
  app.add_option("--allowed-roots", config->allowed_roots,
                 "Directories job paths must lie beneath (comma-separated; {tenant} stands for the "
                 "job's tenant; default <state-dir>/data/{tenant})")
      ->delimiter(',')
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->envname("QUANTD_ALLOWED_ROOTS");
  app.add_option("--heartbeat-seconds", config->heartbeat_seconds, "Worker heartbeat interval")
      ->check(CLI::Range(0.05, 3600.0))
      ->envname("QUANTD_HEARTBEAT_SECONDS");
  app.add_option("--lease-seconds", config->lease_seconds,
                 "A worker's jobs are requeued this long after its stream is gone")
      ->check(CLI::Range(0.1, 86400.0))
      ->envname("QUANTD_LEASE_SECONDS");
  app.add_option("--max-attempts", config->max_attempts, "Runs of a job before it FAILS")
      ->check(CLI::Range(1, 100))
      ->envname("QUANTD_MAX_ATTEMPTS");
  app.add_option("--max-jobs-per-gpu", config->max_jobs_per_gpu,
                 "Cap on jobs sharing one GPU (0: as each worker's --capacity says, default 1)")
      ->check(CLI::Range(0, 64))
      ->envname("QUANTD_MAX_JOBS_PER_GPU");
  app.add_option("--unplaceable-timeout-seconds", config->unplaceable_timeout_seconds,
                 "A job that no connected worker's GPU is large enough for FAILS after waiting "
                 "this long (0: waits for a larger worker forever)")
      ->check(CLI::Range(0.0, 30.0 * 86400.0))
      ->envname("QUANTD_UNPLACEABLE_TIMEOUT_SECONDS");
  app.add_option("--local-worker", config->local_worker,
                 "Start a quantd-worker on this machine (true/false)")
      ->envname("QUANTD_LOCAL_WORKER");
  app.add_option("--worker-binary", config->worker_binary,
                 "quantd-worker to start (default: next to quantd)")
      ->envname("QUANTD_WORKER_BINARY");
  app.add_option("--engine", config->engine_binary, "quantize-awq for the local worker")
      ->envname("QUANTD_ENGINE");
  app.add_option("--tls-cert", config->tls_cert, "Server certificate (PEM)")
      ->envname("QUANTD_TLS_CERT");
  app.add_option("--tls-key", config->tls_key, "Server private key (PEM)")
      ->envname("QUANTD_TLS_KEY");
  app.add_option("--tls-client-ca", config->tls_client_ca,
                 "CA bundle (PEM) whose client certificates authenticate callers (mTLS)")
      ->envname("QUANTD_TLS_CLIENT_CA");
  app.add_option("--tls-ca", config->tls_ca,
                 "CA (PEM) the local worker verifies this server with (default: --tls-cert)")
      ->envname("QUANTD_TLS_CA");
  app.add_option("--identities", config->identities,
                 "Identities file (JSON): token hashes and certificate names -> principal, tenant, "
                 "roles; reloaded on SIGHUP (docs/security.md)")
      ->envname("QUANTD_IDENTITIES");
  app.add_option("--insecure", config->insecure,
                 "Allow a non-loopback --listen without TLS or without --identities (true/false)")
      ->envname("QUANTD_INSECURE");
  app.add_option("--metrics-tls", config->metrics_tls,
                 "Serve /metrics, /healthz and /readyz over TLS with --tls-cert (true/false)")
      ->envname("QUANTD_METRICS_TLS");
  app.add_option("--metrics-require-token", config->metrics_require_token,
                 "/metrics needs a bearer token of the identities file (true/false)")
      ->envname("QUANTD_METRICS_REQUIRE_TOKEN");
  Limits& limits = config->limits;
  app.add_option("--max-request-bytes", limits.max_request_bytes, "Largest request message")
      ->check(CLI::Range(int64_t{1024}, int64_t{1} << 30))
      ->envname("QUANTD_MAX_REQUEST_BYTES");
  app.add_option("--max-system-prompt-bytes", limits.max_system_prompt_bytes,
                 "Longest spec.system_prompt")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30))
      ->envname("QUANTD_MAX_SYSTEM_PROMPT_BYTES");
  app.add_option("--max-string-bytes", limits.max_string_bytes,
                 "Longest other string (module names, list filters, page tokens)")
      ->check(CLI::Range(int64_t{64}, int64_t{1} << 20))
      ->envname("QUANTD_MAX_STRING_BYTES");
  app.add_option("--max-label-value-bytes", limits.max_label_value_bytes, "Longest label value")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 20))
      ->envname("QUANTD_MAX_LABEL_VALUE_BYTES");
  app.add_option("--max-labels-per-job", limits.max_labels_per_job, "Labels on one job")
      ->check(CLI::Range(0, 10000))
      ->envname("QUANTD_MAX_LABELS_PER_JOB");
  app.add_option("--max-watchers-per-principal", limits.max_watchers_per_principal,
                 "Concurrent WatchJob streams of one principal")
      ->check(CLI::Range(1, 1000000))
      ->envname("QUANTD_MAX_WATCHERS_PER_PRINCIPAL");
  app.add_option("--max-queued-jobs-per-tenant", limits.max_queued_jobs_per_tenant,
                 "Jobs one tenant may have QUEUED")
      ->check(CLI::Range(1, 100000000))
      ->envname("QUANTD_MAX_QUEUED_JOBS_PER_TENANT");
  app.add_option("--log-level", config->log_level, "debug|info|warning|error")
      ->check(CLI::IsMember({"debug", "info", "warning", "error"}))
      ->envname("QUANTD_LOG_LEVEL");
  app.add_option("--log-format", config->log_format, "text|json")
      ->check(CLI::IsMember({"text", "json"}))
      ->envname("QUANTD_LOG_FORMAT");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  if (config->state_dir.empty()) {
    const char* xdg = std::getenv("XDG_STATE_HOME");
    const char* home = std::getenv("HOME");
    config->state_dir = xdg && *xdg ? std::string(xdg) + "/quantd"
                        : home      ? std::string(home) + "/.local/state/quantd"
                                    : std::string("/var/lib/quantd");
  }
  if (config->store_path.empty()) config->store_path = config->state_dir + "/quantd.db";
  if (config->allowed_roots.empty()) {
    config->allowed_roots.push_back(DefaultRootPattern(config->state_dir));
  }
  return std::nullopt;
}

}  // namespace quantd::server
