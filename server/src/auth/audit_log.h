// The audit trail: one log line for every mutating call (SubmitJob, CancelJob, a worker's
// Connect), accepted or refused, with the principal, the peer address and the outcome. Lines go to
// quantd's log (stderr; JSON with --log-format=json) prefixed "audit:", so a collector can route
// them.
#ifndef QUANTD_SERVER_AUTH_AUDIT_LOG_H_
#define QUANTD_SERVER_AUTH_AUDIT_LOG_H_

#include <string_view>

#include "absl/status/status.h"
#include "auth/principal.h"

namespace quantd::server::auth {

// `principal` null: the caller did not authenticate.
void Audit(const Principal* principal, std::string_view method, std::string_view peer,
           std::string_view target, const absl::Status& outcome);

}  // namespace quantd::server::auth

#endif  // QUANTD_SERVER_AUTH_AUDIT_LOG_H_
