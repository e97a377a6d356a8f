// What each role may do (docs/security.md): role checks per call, tenant and ownership checks per
// job. Denials are PERMISSION_DENIED naming the principal and what it lacks.
#ifndef QUANTD_SERVER_AUTH_ACCESS_POLICY_H_
#define QUANTD_SERVER_AUTH_ACCESS_POLICY_H_

#include "absl/status/status.h"
#include "auth/principal.h"
#include "quantd/v1/quantization_service.pb.h"

namespace quantd::server::auth {

enum class Action { kSubmit, kGet, kList, kWatch, kCancel, kListWorkers, kServeJobs };

// Whether the principal's roles allow the call at all.
absl::Status CheckAction(const Principal& principal, Action action);
// Whether it may do `action` to this job: same tenant (admins: any); cancel needs its own job
// (admins: any).
absl::Status CheckJobAccess(const Principal& principal, Action action, const v1::Job& job);
// Restricts a ListJobs request to what the principal may see: its own tenant unless admin.
absl::Status ScopeListRequest(const Principal& principal, v1::ListJobsRequest& request);

}  // namespace quantd::server::auth

#endif  // QUANTD_SERVER_AUTH_ACCESS_POLICY_H_
