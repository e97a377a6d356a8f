// quantd: the control plane. Accepts jobs over gRPC, stores them durably and schedules them onto
// quantd-worker processes. Configuration: `quantd --help` (every flag also reads QUANTD_<FLAG>).
#include <signal.h>

#include <cstdio>
#include <string>

#include "logging/logging.h"
#include "quantd_server.h"

int main(int argc, char** argv) {
  quantd::server::ServerConfig config;
  if (std::optional<int> exit_code = quantd::server::ParseServerFlags(argc, argv, &config)) {
    return *exit_code;
  }
  quantd::logging::Configure(
      {quantd::logging::ParseLevel(config.log_level).value_or(quantd::logging::Level::kInfo),
       quantd::logging::ParseFormat(config.log_format).value_or(quantd::logging::Format::kText),
       "quantd"});
  // SIGINT/SIGTERM are taken by sigwait below, in an orderly shutdown; SIGHUP reloads the
  // identities file.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto server = quantd::server::QuantdServer::Start(config);
  if (!server.ok()) {
    quantd::logging::Error("cannot start: " + std::string(server.status().message()));
    return 1;
  }
  int signal_number = 0;
  while (sigwait(&signals, &signal_number) == 0 && signal_number == SIGHUP) {
    (void)(*server)->ReloadIdentities();  // Logs the outcome.
  }
  quantd::logging::Info("signal " + std::to_string(signal_number) + ": shutting down");
  (*server)->Shutdown();
  return 0;
}
