// Parses listen addresses given on the command line: "HOST:PORT", "[IPv6]:PORT" or ":PORT"
// (all interfaces).
#ifndef QUANTD_COMMON_HTTP_HOST_PORT_H_
#define QUANTD_COMMON_HTTP_HOST_PORT_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace quantd::http {

struct HostPort {
  std::string host;  // "0.0.0.0" when the address gave none
  int port = 0;      // 0: any free port
};

// `what` names the flag or field in errors, e.g. "--metrics_address".
absl::StatusOr<HostPort> ParseHostPort(std::string_view address, std::string_view what);

// "HOST:PORT", with an IPv6 host in brackets ("[::1]:9090"): what ParseHostPort reads back.
std::string FormatHostPort(std::string_view host, int port);

}  // namespace quantd::http

#endif  // QUANTD_COMMON_HTTP_HOST_PORT_H_
