// The host name a certificate is issued for, so that the local worker can verify the server's
// certificate while it dials 127.0.0.1 (gRPC's target name override).
#ifndef QUANTD_SERVER_CERTIFICATE_NAME_H_
#define QUANTD_SERVER_CERTIFICATE_NAME_H_

#include <string>

#include "absl/status/statusor.h"

namespace quantd::server {

// The first DNS subjectAltName of the PEM certificate at `path`, else its first IP address
// subjectAltName, else its subject common name.
absl::StatusOr<std::string> CertificateHostName(const std::string& path);

}  // namespace quantd::server

#endif  // QUANTD_SERVER_CERTIFICATE_NAME_H_
