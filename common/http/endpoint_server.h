// The HTTP side of quantd and quantd-worker: /metrics (Prometheus text format), /healthz (the
// process is alive) and /readyz (it can do its work: e.g. store open and accepting jobs), for
// Prometheus and Kubernetes probes. Serves on its own threads until Stop() or destruction.
#ifndef QUANTD_COMMON_HTTP_ENDPOINT_SERVER_H_
#define QUANTD_COMMON_HTTP_ENDPOINT_SERVER_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "metrics/registry.h"

namespace httplib {
class Server;
}

namespace quantd::http {

// OK when ready; otherwise the message says why not (it is sent in the 503 body). Called on an
// HTTP thread for every /readyz request, so it must be thread-safe and quick.
using ReadinessCheck = std::function<absl::Status()>;

// Whether the "Authorization" header of a /metrics request may read the metrics.
using MetricsAuthorizer = std::function<bool(const std::string& authorization)>;

struct EndpointOptions {
  std::string address = ":9090";  // HOST:PORT, [IPv6]:PORT or :PORT; port 0 picks a free one
  std::string address_flag = "--metrics_address";  // named in address errors
  const metrics::Registry* registry = nullptr;     // required; must outlive the server
  ReadinessCheck readiness;                        // empty: ready whenever alive
  std::string ready_note = "";  // appended to /readyz's 200 body (e.g. that the process is insecure)
  // Both set: serve HTTPS with this certificate chain and key (PEM files).
  std::string tls_cert = "";
  std::string tls_key = "";
  // Set: /metrics answers 401 unless it accepts the request's Authorization header. /healthz and
  // /readyz stay open (probes carry no credentials).
  MetricsAuthorizer authorize_metrics = nullptr;
};

class EndpointServer {
 public:
  // Binds the address (so the port accepts connections when this returns) and starts serving.
  static absl::StatusOr<std::unique_ptr<EndpointServer>> Start(EndpointOptions options);

  ~EndpointServer();  // Stop()s
  EndpointServer(const EndpointServer&) = delete;
  EndpointServer& operator=(const EndpointServer&) = delete;

  const std::string& host() const { return host_; }
  int port() const { return port_; }
  // "http://HOST:PORT" (or https) for messages such as "metrics at http://0.0.0.0:9090/metrics".
  std::string url() const;

  // Stops accepting, finishes the requests in flight and joins the serving thread. Idempotent.
  void Stop();

 private:
  EndpointServer(std::unique_ptr<httplib::Server> server, std::string host, int port, bool tls);

  std::unique_ptr<httplib::Server> server_;
  std::string host_;
  int port_;
  bool tls_;
  std::atomic<bool> serving_ended_{false};
  std::thread thread_;
};

}  // namespace quantd::http

#endif  // QUANTD_COMMON_HTTP_ENDPOINT_SERVER_H_
