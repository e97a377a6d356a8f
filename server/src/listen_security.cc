#include "listen_security.h"

#include <arpa/inet.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace quantd::server {

bool IsLoopbackAddress(const std::string& listen) {
  if (absl::StartsWith(listen, "unix:") || absl::StartsWith(listen, "unix-abstract:")) return true;
  std::string host = listen;
  if (absl::StartsWith(host, "ipv4:")) host = host.substr(5);
  if (absl::StartsWith(host, "ipv6:")) host = host.substr(5);
  if (!host.empty() && host.front() == '[') {
    const size_t close = host.find(']');
    if (close == std::string::npos) return false;
    host = host.substr(1, close - 1);
  } else if (const size_t colon = host.rfind(':'); colon != std::string::npos) {
    host = host.substr(0, colon);
  }
  if (host == "localhost") return true;
  in_addr v4;
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6;
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;  // Empty (every interface), 0.0.0.0, ::, or a host name.
}

absl::StatusOr<std::string> CheckListenSecurity(const ServerConfig& config) {
  if (!config.tls_client_ca.empty() && config.tls_cert.empty()) {
    return absl::FailedPreconditionError("--tls-client-ca needs --tls-cert and --tls-key");
  }
  if (config.metrics_require_token && config.identities.empty()) {
    return absl::FailedPreconditionError(
        "--metrics-require-token needs --identities (the tokens it accepts)");
  }
  if (config.metrics_tls && config.tls_cert.empty()) {
    return absl::FailedPreconditionError("--metrics-tls needs --tls-cert and --tls-key");
  }
  if (IsLoopbackAddress(config.listen)) return std::string();
  std::vector<std::string> missing;
  if (config.tls_cert.empty() || config.tls_key.empty())
    missing.push_back("TLS (--tls-cert, --tls-key)");
  if (config.identities.empty()) missing.push_back("authentication (--identities)");
  if (missing.empty()) return std::string();
  const std::string what =
      absl::StrCat("--listen=", config.listen, " is not a loopback address and ", "there is no ",
                   absl::StrJoin(missing, " and no "));
  if (!config.insecure) {
    return absl::FailedPreconditionError(absl::StrCat(
        what,
        ": anyone who reaches the port could submit, read and cancel jobs and serve them as a "
        "worker. Configure them (docs/security.md), listen on 127.0.0.1, or pass --insecure "
        "to run like this anyway"));
  }
  return what;
}

}  // namespace quantd::server
