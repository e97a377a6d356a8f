#include "quantd_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "grpc_services.h"
#include "http/host_port.h"
#include "job_manager.h"
#include "logging/logging.h"
#include "metrics/grpc/grpc_server_metrics.h"
#include "store/instrumented_job_store.h"

namespace quantd::server {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::FailedPreconditionError(absl::StrCat("cannot read ", path));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string ExecutableDir() {
  std::error_code ec;
  return std::filesystem::read_symlink("/proc/self/exe", ec).parent_path().string();
}

}  // namespace

absl::StatusOr<std::unique_ptr<QuantdServer>> QuantdServer::Start(const ServerConfig& config) {
  std::unique_ptr<QuantdServer> server(new QuantdServer(config));
  for (auto init :
       {&QuantdServer::InitMetrics, &QuantdServer::InitStore, &QuantdServer::InitManager,
        &QuantdServer::InitGrpc, &QuantdServer::InitEndpoints, &QuantdServer::WritePortFile,
        &QuantdServer::StartLocalWorker}) {
    if (absl::Status s = (server.get()->*init)(); !s.ok()) {
      server->Shutdown();
      return s;
    }
  }
  return server;
}

QuantdServer::QuantdServer(ServerConfig config) : config_(std::move(config)) {}

QuantdServer::~QuantdServer() { Shutdown(); }

absl::Status QuantdServer::InitMetrics() {
  absl::StatusOr<std::unique_ptr<metrics::ServerMetrics>> server_metrics =
      metrics::ServerMetrics::Create(registry_);
  if (!server_metrics.ok()) return server_metrics.status();
  metrics_ = std::move(*server_metrics);
  return absl::OkStatus();
}

absl::Status QuantdServer::InitStore() {
  const StoreBackend backend =
      config_.store == "memory" ? StoreBackend::kMemory : StoreBackend::kSqlite;
  absl::StatusOr<std::unique_ptr<JobStore>> store = OpenJobStore(backend, config_.store_path);
  if (!store.ok()) return store.status();
  store_ = std::make_unique<InstrumentedJobStore>(std::move(*store), *metrics_, [this](bool ok) {
    if (!ok) logging::Error(absl::StrCat("not ready: ", store_->Health().ToString()));
    if (ok) logging::Info("job store works again: ready");
    UpdateHealth();
  });
  logging::Info(backend == StoreBackend::kMemory
                    ? std::string("job store: in memory (jobs are lost when quantd stops)")
                    : absl::StrCat("job store: ", config_.store_path));
  return absl::OkStatus();
}

absl::Status QuantdServer::InitManager() {
  JobManagerOptions options;
  options.paths.allowed_roots = config_.allowed_roots;
  options.heartbeat_interval = absl::Seconds(config_.heartbeat_seconds);
  options.lease_duration = absl::Seconds(config_.lease_seconds);
  options.max_attempts = config_.max_attempts;
  options.unplaceable_timeout = absl::Seconds(config_.unplaceable_timeout_seconds);
  options.max_jobs_per_gpu = config_.max_jobs_per_gpu;
  manager_ = std::make_unique<JobManager>(store_.get(), options, *metrics_);
  registry_.AddCollectCallback([manager = manager_.get()] { manager->CollectMetrics(); });
  return manager_->Recover();  // Before the port opens: no RPC sees a half-recovered state.
}

absl::Status QuantdServer::InitGrpc() {
  jobs_service_ = std::make_unique<QuantizationServiceImpl>(manager_.get());
  worker_service_ = std::make_unique<WorkerServiceImpl>(manager_.get());
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
  if (!config_.tls_cert.empty() || !config_.tls_key.empty()) {
    absl::StatusOr<std::string> cert = ReadFile(config_.tls_cert);
    absl::StatusOr<std::string> key = ReadFile(config_.tls_key);
    if (!cert.ok())
      return absl::InvalidArgumentError(absl::StrCat("--tls-cert: ", cert.status().message()));
    if (!key.ok())
      return absl::InvalidArgumentError(absl::StrCat("--tls-key: ", key.status().message()));
    grpc::SslServerCredentialsOptions ssl;
    ssl.pem_key_cert_pairs.push_back({*key, *cert});
    credentials = grpc::SslServerCredentials(ssl);
  }
  grpc::ServerBuilder builder;
  builder.AddListeningPort(config_.listen, credentials, &port_);
  builder.RegisterService(jobs_service_.get());
  builder.RegisterService(worker_service_.get());
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
  creators.push_back(metrics::MakeGrpcMetricsInterceptorFactory(*metrics_));
  builder.experimental().SetInterceptorCreators(std::move(creators));
  grpc_server_ = builder.BuildAndStart();
  if (!grpc_server_ || port_ == 0) {
    return absl::UnavailableError(absl::StrCat("--listen: cannot serve on ", config_.listen));
  }
  manager_->Start();
  UpdateHealth();
  logging::Info(
      absl::StrCat("serving on ", config_.listen.substr(0, config_.listen.rfind(':')), ":", port_));
  return absl::OkStatus();
}

absl::Status QuantdServer::Readiness() const {
  if (shutting_down_ || !manager_ || !manager_->accepting()) {
    return absl::UnavailableError("not accepting jobs (starting or shutting down)");
  }
  if (absl::Status store = store_->Health(); !store.ok()) {
    return absl::UnavailableError(absl::StrCat("job store failing: ", store.message()));
  }
  return absl::OkStatus();
}

void QuantdServer::UpdateHealth() {
  std::lock_guard<std::mutex> lock(health_mu_);
  if (!grpc_server_) return;
  const bool ready = Readiness().ok();
  grpc::HealthCheckServiceInterface* health = grpc_server_->GetHealthCheckService();
  health->SetServingStatus(ready);
  health->SetServingStatus("quantd.v1.QuantizationService", ready);
}

absl::Status QuantdServer::InitEndpoints() {
  absl::StatusOr<std::unique_ptr<http::EndpointServer>> endpoint =
      http::EndpointServer::Start({.address = config_.metrics_address,
                                   .address_flag = "--metrics-address",
                                   .registry = &registry_,
                                   .readiness = [this] { return Readiness(); }});
  if (!endpoint.ok()) return endpoint.status();
  endpoint_ = std::move(*endpoint);
  logging::Info(
      absl::StrCat("metrics at ", endpoint_->url(), "/metrics (health: /healthz, /readyz)"));
  return absl::OkStatus();
}

absl::Status QuantdServer::WritePortFile() {
  if (config_.port_file.empty()) return absl::OkStatus();
  const std::string temp = config_.port_file + ".tmp";
  {
    std::ofstream out(temp);
    out << port_ << "\n";
    if (!out)
      return absl::FailedPreconditionError(absl::StrCat("--port-file: cannot write ", temp));
  }
  std::error_code ec;
  std::filesystem::rename(temp, config_.port_file, ec);  // Readers never see a partial file.
  if (ec) return absl::FailedPreconditionError(absl::StrCat("--port-file: ", ec.message()));
  return absl::OkStatus();
}

absl::Status QuantdServer::StartLocalWorker() {
  if (!config_.local_worker) return absl::OkStatus();
  std::string binary =
      config_.worker_binary.empty() ? ExecutableDir() + "/quantd-worker" : config_.worker_binary;
  if (access(binary.c_str(), X_OK) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("local worker: ", binary,
                     " is not executable (set --worker-binary or --local-worker=false)"));
  }
  // The local worker's metrics next to the server's: the port after it (7451 -> 7452), or a free
  // one when the server's was picked freely.
  absl::StatusOr<http::HostPort> metrics_address =
      http::ParseHostPort(config_.metrics_address, "--metrics-address");
  const int worker_metrics_port =
      !metrics_address.ok() || metrics_address->port == 0 ? 0 : endpoint_->port() + 1;
  std::vector<std::string> args = {
      binary,
      absl::StrCat("--server=127.0.0.1:", port_),
      "--worker-id=local",
      "--log-level=" + config_.log_level,
      "--log-format=" + config_.log_format,
      "--metrics-address=" + http::FormatHostPort(endpoint_->host(), worker_metrics_port)};
  if (!config_.engine_binary.empty()) args.push_back("--engine=" + config_.engine_binary);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError("local worker: fork failed");
  if (pid == 0) {
    // The local worker lives and dies with this server.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(1);
    execv(argv[0], argv.data());
    _exit(127);
  }
  local_worker_ = pid;
  logging::Info(absl::StrCat("started local worker ", binary, " (pid ", pid, ")"));
  return absl::OkStatus();
}

void QuantdServer::Shutdown() {
  std::lock_guard<std::mutex> lock(shutdown_mu_);
  if (shut_down_) return;
  shut_down_ = true;
  shutting_down_ = true;
  UpdateHealth();  // Not ready from here on: probes and load balancers stop sending work.
  if (local_worker_ > 0) {
    kill(local_worker_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 150 && waitpid(local_worker_, &status, WNOHANG) == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    kill(local_worker_, SIGKILL);
    waitpid(local_worker_, &status, 0);
    local_worker_ = -1;
  }
  if (manager_) manager_->Stop();  // Ends watches and worker streams.
  if (grpc_server_) {
    grpc_server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  }
  if (endpoint_) endpoint_->Stop();
  logging::Info("quantd stopped");
}

void QuantdServer::Wait() {
  if (grpc_server_) grpc_server_->Wait();
}

}  // namespace quantd::server
