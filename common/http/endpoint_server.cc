#include "http/endpoint_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <chrono>

#include "absl/strings/str_cat.h"
#include "http/host_port.h"
#include "metrics/text_format.h"

namespace quantd::http {
namespace {

// Scrapes and probes are few and short; a small pool keeps the thread count predictable.
constexpr size_t kServingThreads = 4;

void InstallHandlers(httplib::Server& server, const metrics::Registry* registry,
                     ReadinessCheck readiness, std::string ready_note,
                     MetricsAuthorizer authorize) {
  server.Get("/metrics", [registry, authorize = std::move(authorize)](
                             const httplib::Request& request, httplib::Response& response) {
    if (authorize && !authorize(request.get_header_value("Authorization"))) {
      response.status = 401;
      response.set_header("WWW-Authenticate", "Bearer");
      response.set_content("a bearer token is required\n", "text/plain; charset=utf-8");
      return;
    }
    response.set_content(registry->Serialize(), std::string(metrics::kTextContentType).c_str());
  });
  server.Get("/healthz", [](const httplib::Request&, httplib::Response& response) {
    response.set_content("ok\n", "text/plain; charset=utf-8");
  });
  server.Get("/readyz", [readiness = std::move(readiness), ready_note = std::move(ready_note)](
                            const httplib::Request&, httplib::Response& response) {
    absl::Status status = readiness ? readiness() : absl::OkStatus();
    if (status.ok()) {
      response.set_content(
          ready_note.empty() ? std::string("ready\n") : absl::StrCat("ready (", ready_note, ")\n"),
          "text/plain; charset=utf-8");
      return;
    }
    response.status = 503;
    response.set_content(absl::StrCat("not ready: ", status.message(), "\n"),
                         "text/plain; charset=utf-8");
  });
}

}  // namespace

absl::StatusOr<std::unique_ptr<EndpointServer>> EndpointServer::Start(EndpointOptions options) {
  if (options.registry == nullptr) {
    return absl::InvalidArgumentError("EndpointServer: options.registry is required");
  }
  absl::StatusOr<HostPort> address = ParseHostPort(options.address, options.address_flag);
  if (!address.ok()) return address.status();

  std::unique_ptr<httplib::Server> server;
  const bool tls = !options.tls_cert.empty() && !options.tls_key.empty();
  if (tls) {
    auto ssl =
        std::make_unique<httplib::SSLServer>(options.tls_cert.c_str(), options.tls_key.c_str());
    if (!ssl->is_valid()) {
      return absl::InvalidArgumentError(absl::StrCat(options.address_flag,
                                                     ": cannot serve TLS with ", options.tls_cert,
                                                     " and ", options.tls_key));
    }
    server = std::move(ssl);
  } else {
    server = std::make_unique<httplib::Server>();
  }
  // SO_REUSEADDR (a restart may bind while old connections linger) but not httplib's default
  // SO_REUSEPORT, which would let a second process listen on the same port without an error.
  server->set_socket_options([](socket_t socket) {
    int yes = 1;
    setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  // One request per connection: scrapes are seconds apart, and an idle keep-alive connection
  // would hold Stop() for httplib's keep-alive timeout (5 s).
  server->set_keep_alive_max_count(1);
  server->new_task_queue = [] { return new httplib::ThreadPool(kServingThreads); };
  InstallHandlers(*server, options.registry, std::move(options.readiness),
                  std::move(options.ready_note), std::move(options.authorize_metrics));
  int port = address->port;
  bool bound = port == 0 ? (port = server->bind_to_any_port(address->host)) > 0
                         : server->bind_to_port(address->host, port);
  if (!bound) {
    return absl::UnavailableError(absl::StrCat(options.address_flag, " \"", options.address,
                                               "\": cannot listen there (in use, or not an "
                                               "address of this host)"));
  }
  return std::unique_ptr<EndpointServer>(
      new EndpointServer(std::move(server), address->host, port, tls));
}

EndpointServer::EndpointServer(std::unique_ptr<httplib::Server> server, std::string host, int port,
                               bool tls)
    : server_(std::move(server)), host_(std::move(host)), port_(port), tls_(tls) {
  thread_ = std::thread([this] {
    server_->listen_after_bind();
    serving_ended_.store(true);
  });
  // httplib's stop() does nothing until the accept loop runs, so wait for it here: a Stop() right
  // after Start() must not leave the loop running forever.
  while (!server_->is_running() && !serving_ended_.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

EndpointServer::~EndpointServer() { Stop(); }

std::string EndpointServer::url() const {
  return (tls_ ? "https://" : "http://") + FormatHostPort(host_, port_);
}

void EndpointServer::Stop() {
  if (!thread_.joinable()) return;
  server_->stop();
  thread_.join();
}

}  // namespace quantd::http
