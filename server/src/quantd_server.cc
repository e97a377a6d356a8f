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
#include "absl/strings/str_join.h"
#include "allowed_roots.h"
#include "auth/authenticator.h"
#include "certificate_name.h"
#include "grpc_services.h"
#include "http/host_port.h"
#include "job_manager.h"
#include "listen_security.h"
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
  absl::StatusOr<std::string> insecure = CheckListenSecurity(config);
  if (!insecure.ok()) return insecure.status();
  std::unique_ptr<QuantdServer> server(new QuantdServer(config));
  server->insecure_ = *insecure;
  if (!server->insecure_.empty()) {
    logging::SetMessagePrefix("INSECURE (--insecure): ");
    logging::Warning(absl::StrCat(server->insecure_, "; starting anyway because of --insecure"));
  }
  for (auto init :
       {&QuantdServer::InitMetrics, &QuantdServer::InitAuth, &QuantdServer::InitStore,
        &QuantdServer::InitManager, &QuantdServer::InitGrpc, &QuantdServer::InitEndpoints,
        &QuantdServer::WritePortFile, &QuantdServer::StartLocalWorker}) {
    if (absl::Status s = (server.get()->*init)(); !s.ok()) {
      server->Shutdown();
      logging::SetMessagePrefix("");
      return s;
    }
  }
  if (!server->insecure_.empty()) {
    logging::Warning(absl::StrCat("started insecurely: ", server->insecure_));
    logging::SetMessagePrefix("");
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

absl::Status QuantdServer::InitAuth() {
  absl::StatusOr<std::unique_ptr<auth::Authenticator>> authenticator =
      auth::Authenticator::Create(config_.identities);
  if (!authenticator.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--identities: ", authenticator.status().message()));
  }
  authenticator_ = std::move(*authenticator);
  for (const std::string& tenant : authenticator_->tenants()) {
    CreateStateDirRoots(config_.allowed_roots, config_.state_dir, tenant);
  }
  logging::Info(
      authenticator_->anonymous()
          ? std::string("no credentials configured: every caller may do everything (loopback)")
          : absl::StrCat("identities: ", authenticator_->principals(), " principals from ",
                         config_.identities, " (SIGHUP reloads)"));
  logging::Info(absl::StrCat("allowed roots: ", absl::StrJoin(config_.allowed_roots, ", ")));
  return absl::OkStatus();
}

absl::Status QuantdServer::ReloadIdentities() {
  if (!authenticator_ || authenticator_->anonymous()) {
    return absl::FailedPreconditionError("no --identities file to reload");
  }
  if (absl::Status s = authenticator_->Reload(); !s.ok()) {
    logging::Error(
        absl::StrCat("identities not reloaded, the previous ones stay in force: ", s.message()));
    return s;
  }
  for (const std::string& tenant : authenticator_->tenants()) {
    CreateStateDirRoots(config_.allowed_roots, config_.state_dir, tenant);
  }
  logging::Info(absl::StrCat("identities reloaded: ", authenticator_->principals(),
                             " principals from ", config_.identities));
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
  jobs_service_ = std::make_unique<QuantizationServiceImpl>(manager_.get(), authenticator_.get(),
                                                            config_.limits);
  worker_service_ = std::make_unique<WorkerServiceImpl>(manager_.get(), authenticator_.get());
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
    if (!config_.tls_client_ca.empty()) {
      absl::StatusOr<std::string> client_ca = ReadFile(config_.tls_client_ca);
      if (!client_ca.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("--tls-client-ca: ", client_ca.status().message()));
      }
      // Requested and verified when presented; a caller may authenticate with a token instead.
      ssl.pem_root_certs = *client_ca;
      ssl.client_certificate_request = GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY;
    }
    credentials = grpc::SslServerCredentials(ssl);
  }
  grpc::ServerBuilder builder;
  builder.SetMaxReceiveMessageSize(static_cast<int>(config_.limits.max_request_bytes));
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
  logging::Info(absl::StrCat("serving on ", config_.listen.substr(0, config_.listen.rfind(':')),
                             ":", port_, config_.tls_cert.empty() ? " (plaintext)" : " (TLS)",
                             config_.tls_client_ca.empty() ? "" : ", client certificates"));
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
  http::EndpointOptions options;
  options.address = config_.metrics_address;
  options.address_flag = "--metrics-address";
  options.registry = &registry_;
  options.readiness = [this] { return Readiness(); };
  if (!insecure_.empty()) options.ready_note = absl::StrCat("INSECURE: ", insecure_);
  if (config_.metrics_tls) {
    options.tls_cert = config_.tls_cert;
    options.tls_key = config_.tls_key;
  }
  if (config_.metrics_require_token) {
    options.authorize_metrics = [authenticator = authenticator_.get()](const std::string& value) {
      auth::PresentedCredentials presented;
      presented.authorization = value;
      return !value.empty() && authenticator->Authenticate(presented).ok();
    };
  }
  absl::StatusOr<std::unique_ptr<http::EndpointServer>> endpoint =
      http::EndpointServer::Start(std::move(options));
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
      binary, absl::StrCat("--server=127.0.0.1:", port_), "--worker-id=local",
      "--log-level=" + config_.log_level, "--log-format=" + config_.log_format,
      // The local worker cannot check the identities file's tokens: where the server's /metrics
      // needs one, the worker's is reachable from this machine only.
      "--metrics-address=" +
          http::FormatHostPort(config_.metrics_require_token ? "127.0.0.1" : endpoint_->host(),
                               worker_metrics_port)};
  if (!config_.engine_binary.empty()) args.push_back("--engine=" + config_.engine_binary);
  if (!config_.tls_cert.empty()) {
    // The local worker verifies this server like any worker: the CA and the name in the cert.
    const std::string ca = config_.tls_ca.empty() ? config_.tls_cert : config_.tls_ca;
    args.push_back("--tls-ca=" + ca);
    absl::StatusOr<std::string> name = CertificateHostName(config_.tls_cert);
    if (!name.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--tls-cert: ", name.status().message()));
    }
    args.push_back("--tls-server-name=" + *name);
  }
  if (config_.metrics_tls) {
    // Its probes and metrics are served like the server's: over HTTPS with the same certificate.
    args.push_back("--metrics-tls-cert=" + config_.tls_cert);
    args.push_back("--metrics-tls-key=" + config_.tls_key);
  }
  // Its credential: a token made now, handed over in the environment (never on the command line).
  const std::string token = authenticator_->IssueLocalWorkerToken();
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // The environment is built here: after fork() only async-signal-safe calls are allowed.
  std::vector<std::string> env_strings;
  // The server's own credential settings are not the worker's: quantd-worker reads QUANTD_TLS_CERT
  // and QUANTD_TLS_KEY as its client certificate, QUANTD_TOKEN(_FILE) as its token.
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view var(*e);
    const bool credential =
        var.starts_with("QUANTD_TOKEN=") || var.starts_with("QUANTD_TOKEN_FILE=") ||
        var.starts_with("QUANTD_TLS_CERT=") || var.starts_with("QUANTD_TLS_KEY=") ||
        var.starts_with("QUANTD_METRICS_TOKEN_FILE=");
    if (!credential) env_strings.emplace_back(*e);
  }
  if (!token.empty()) env_strings.push_back("QUANTD_TOKEN=" + token);
  std::vector<char*> envp;
  for (std::string& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError("local worker: fork failed");
  if (pid == 0) {
    // The local worker lives and dies with this server.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(1);
    execve(argv[0], argv.data(), envp.data());
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
