// Configuration of quantd, from flags or the environment (QUANTD_<FLAG>, e.g. QUANTD_LISTEN).
// The defaults run on one machine with nothing configured: SQLite store under the user's state
// directory, a local quantd-worker started by the server, listening on 127.0.0.1:7450.
#ifndef QUANTD_SERVER_SERVER_CONFIG_H_
#define QUANTD_SERVER_SERVER_CONFIG_H_

#include <optional>
#include <string>
#include <vector>

#include "request_limits.h"

namespace quantd::server {

struct ServerConfig {
  std::string listen = "127.0.0.1:7450";  // host:port; port 0 picks a free one (see port_file).
  std::string port_file;                  // Written with the bound port once serving.
  // /metrics, /healthz and /readyz (HOST:PORT, [IPv6]:PORT or :PORT; port 0 picks a free one).
  std::string metrics_address = "127.0.0.1:7451";
  std::string state_dir;         // Default: $XDG_STATE_HOME/quantd or ~/.local/state/quantd.
  std::string store = "sqlite";  // sqlite | memory
  std::string store_path;        // Default: <state_dir>/quantd.db
  // Job paths must lie beneath one; "{tenant}" stands for the job's tenant. Default (when none is
  // given): <state_dir>/data/{tenant}. Never "anywhere".
  std::vector<std::string> allowed_roots;
  double heartbeat_seconds = 2.0;
  double lease_seconds = 10.0;
  int max_attempts = 3;
  int max_jobs_per_gpu = 0;  // 0: as each worker advertises (quantd-worker --capacity, default 1).
  // A job no connected worker's GPU is large enough for FAILS after waiting this long; 0: never.
  double unplaceable_timeout_seconds = 1800.0;
  bool local_worker = true;
  std::string worker_binary;  // Default: quantd-worker next to the quantd executable.
  std::string engine_binary;  // Passed to the local worker as --engine when set.
  std::string tls_cert;       // PEM files; both set = TLS, else plaintext.
  std::string tls_key;
  // PEM CA bundle: client certificates it signs are verified and mapped to principals by their
  // common name (the identities file's certificate_cn). Needs tls_cert.
  std::string tls_client_ca;
  // PEM CA the local worker verifies this server with. Default: tls_cert itself (self-signed).
  std::string tls_ca;
  // The identities file (auth/identity_table.h): bearer tokens and certificate names, each with a
  // principal, a tenant and roles. Empty: no credentials (every caller may do everything), allowed
  // on loopback only unless `insecure`.
  std::string identities;
  // Serve on a non-loopback address without TLS or without identities (said in every start-up
  // log line and in /readyz).
  bool insecure = false;
  bool metrics_tls = false;            // Serve /metrics, /healthz, /readyz over TLS (tls_cert).
  bool metrics_require_token = false;  // /metrics needs a bearer token from the identities.
  Limits limits;
  std::string log_level = "info";
  std::string log_format = "text";
};

// Parses argv (and the environment). Returns the exit code to leave with (after --help or a usage
// error, printed to stdout/stderr), or nullopt to go on.
std::optional<int> ParseServerFlags(int argc, char** argv, ServerConfig* config);

}  // namespace quantd::server

#endif  // QUANTD_SERVER_SERVER_CONFIG_H_
