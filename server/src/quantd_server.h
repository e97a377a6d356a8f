// QuantdServer: the quantd process assembled. Start() is the one place where the pieces are wired,
// in dependency order: store -> recovery -> manager -> gRPC services (+ health, reflection) ->
// port -> scheduler -> local worker. Nothing is served before recovery has finished.
//
// Threading: Start/Shutdown/Wait may be called from any thread; Shutdown is idempotent.
#ifndef QUANTD_SERVER_QUANTD_SERVER_H_
#define QUANTD_SERVER_QUANTD_SERVER_H_

#include <sys/types.h>

#include <memory>
#include <mutex>

#include "absl/status/statusor.h"
#include "server_config.h"
#include "service_counters.h"

namespace grpc {
class Server;
}

namespace quantd::server {

class JobStore;
class JobManager;
class QuantizationServiceImpl;
class WorkerServiceImpl;

class QuantdServer {
 public:
  static absl::StatusOr<std::unique_ptr<QuantdServer>> Start(const ServerConfig& config);
  ~QuantdServer();

  int port() const { return port_; }
  const ServiceCounters& counters() const { return counters_; }
  // Blocks until Shutdown() has completed.
  void Wait();
  // Stops the local worker, ends every stream, stops serving.
  void Shutdown();

 private:
  explicit QuantdServer(ServerConfig config);
  absl::Status InitStore();
  absl::Status InitManager();
  absl::Status InitGrpc();
  absl::Status WritePortFile();
  absl::Status StartLocalWorker();

  ServerConfig config_;
  ServiceCounters counters_;
  std::unique_ptr<JobStore> store_;
  std::unique_ptr<JobManager> manager_;
  std::unique_ptr<QuantizationServiceImpl> jobs_service_;
  std::unique_ptr<WorkerServiceImpl> worker_service_;
  std::unique_ptr<grpc::Server> grpc_server_;
  int port_ = 0;
  pid_t local_worker_ = -1;
  std::mutex shutdown_mu_;
  bool shut_down_ = false;
};

}  // namespace quantd::server

#endif  // QUANTD_SERVER_QUANTD_SERVER_H_
