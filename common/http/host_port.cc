#include "http/host_port.h"

#include <charconv>

#include "absl/strings/str_cat.h"

namespace quantd::http {

absl::StatusOr<HostPort> ParseHostPort(std::string_view address, std::string_view what) {
  auto error = [&](std::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(what), " \"", std::string(address), "\": ", std::string(why)));
  };
  size_t colon = address.rfind(':');
  if (colon == std::string_view::npos) return error("expected HOST:PORT, [IPv6]:PORT or :PORT");
  std::string_view host = address.substr(0, colon);
  std::string_view port_text = address.substr(colon + 1);
  if (!host.empty() && host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return error("unbalanced [ ] around an IPv6 host");
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return error("an IPv6 host must be written in brackets, e.g. [::1]:9090");
  }
  int port = -1;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
      port < 0 || port > 65535) {
    return error("port must be a number from 0 to 65535");
  }
  return HostPort{host.empty() ? "0.0.0.0" : std::string(host), port};
}

std::string FormatHostPort(std::string_view host, int port) {
  const bool ipv6 = host.find(':') != std::string_view::npos;
  return absl::StrCat(ipv6 ? "[" : "", absl::string_view(host.data(), host.size()), ipv6 ? "]" : "",
                      ":", port);
}

}  // namespace quantd::http
