// Secure defaults of quantd's listening address. On loopback (127.0.0.0/8, ::1, localhost, a unix
// socket) a server without credentials keeps the one-machine experience. On any other address
// quantd serves only with TLS (--tls-cert/--tls-key) and authentication (--identities), unless
// --insecure says otherwise explicitly.
#ifndef QUANTD_SERVER_LISTEN_SECURITY_H_
#define QUANTD_SERVER_LISTEN_SECURITY_H_

#include <string>

#include "absl/status/statusor.h"
#include "server_config.h"

namespace quantd::server {

bool IsLoopbackAddress(const std::string& listen);

// FAILED_PRECONDITION naming what is missing when the configuration must not start; otherwise
// "" or, when --insecure lets an insecure configuration start, what is insecure about it.
absl::StatusOr<std::string> CheckListenSecurity(const ServerConfig& config);

}  // namespace quantd::server

#endif  // QUANTD_SERVER_LISTEN_SECURITY_H_
