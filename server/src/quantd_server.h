// QuantdServer: the quantd process assembled. Start() is the one place where the pieces are wired,
// in dependency order: listen security check -> metrics -> identities -> store -> recovery ->
// manager -> gRPC services (+ health, reflection, metrics interceptor) -> port -> scheduler ->
// /metrics, /healthz, /readyz -> local worker. Nothing is served before recovery has finished.
//
// Readiness (/readyz and the gRPC health status, kept equal): the manager accepts jobs (between
// start and shutdown) and the job store's latest operation did not fail like a broken store.
//
// Threading: Start/Shutdown/Wait may be called from any thread; Shutdown is idempotent.
#ifndef QUANTD_SERVER_QUANTD_SERVER_H_
#define QUANTD_SERVER_QUANTD_SERVER_H_

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <mutex>

#include "absl/status/statusor.h"
#include "http/endpoint_server.h"
#include "metrics/quantd_metrics.h"
#include "metrics/registry.h"
#include "server_config.h"

namespace grpc {
class Server;
}

namespace quantd::server {

namespace auth {
class Authenticator;
}
class InstrumentedJobStore;
class JobManager;
class QuantizationServiceImpl;
class WorkerServiceImpl;

class QuantdServer {
 public:
  static absl::StatusOr<std::unique_ptr<QuantdServer>> Start(const ServerConfig& config);
  ~QuantdServer();

  int port() const { return port_; }
  // "http://HOST:PORT" of /metrics, /healthz and /readyz.
  std::string metrics_url() const { return endpoint_ ? endpoint_->url() : std::string(); }
  // OK when ready to accept work, else why not.
  absl::Status Readiness() const;
  // Re-reads the identities file (SIGHUP); on error the previous identities stay in force.
  absl::Status ReloadIdentities();
  // Blocks until Shutdown() has completed.
  void Wait();
  // Stops the local worker, ends every stream, stops serving.
  void Shutdown();

 private:
  explicit QuantdServer(ServerConfig config);
  absl::Status InitMetrics();
  absl::Status InitAuth();
  absl::Status InitStore();
  absl::Status InitManager();
  absl::Status InitGrpc();
  absl::Status InitEndpoints();
  absl::Status WritePortFile();
  // Sets the gRPC health status from Readiness().
  void UpdateHealth();
  absl::Status StartLocalWorker();

  ServerConfig config_;
  std::string insecure_;  // What is insecure about this configuration (--insecure), or "".
  std::unique_ptr<auth::Authenticator> authenticator_;
  metrics::Registry registry_;
  std::unique_ptr<metrics::ServerMetrics> metrics_;
  std::unique_ptr<InstrumentedJobStore> store_;
  std::unique_ptr<JobManager> manager_;
  std::unique_ptr<QuantizationServiceImpl> jobs_service_;
  std::unique_ptr<WorkerServiceImpl> worker_service_;
  std::unique_ptr<grpc::Server> grpc_server_;
  std::unique_ptr<http::EndpointServer> endpoint_;
  std::mutex health_mu_;  // Orders health updates against each other and against Shutdown.
  int port_ = 0;
  pid_t local_worker_ = -1;
  std::mutex shutdown_mu_;
  bool shut_down_ = false;
  std::atomic<bool> shutting_down_{false};
};

}  // namespace quantd::server

#endif  // QUANTD_SERVER_QUANTD_SERVER_H_
