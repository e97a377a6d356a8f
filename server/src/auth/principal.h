// Who is calling: a principal (a user, a pipeline or a worker), the tenant whose jobs it may see
// and its roles. Roles on the wire and in the identities file: "viewer", "submitter", "admin",
// "worker" (docs/security.md).
#ifndef QUANTD_SERVER_AUTH_PRINCIPAL_H_
#define QUANTD_SERVER_AUTH_PRINCIPAL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace quantd::server::auth {

enum class Role : uint32_t {
  kViewer = 1,     // GetJob, ListJobs, WatchJob, ListWorkers (own tenant).
  kSubmitter = 2,  // + SubmitJob, CancelJob of its own jobs.
  kAdmin = 4,      // Everything in QuantizationService, every tenant.
  kWorker = 8,     // WorkerService only.
};

std::optional<Role> ParseRole(std::string_view name);
std::string_view RoleName(Role role);

// The tenant of principals that name none, and of every caller of a server without credentials.
inline constexpr char kDefaultTenant[] = "default";

struct Principal {
  std::string name;  // "" for the anonymous caller of a server without credentials.
  std::string tenant = kDefaultTenant;
  uint32_t roles = 0;  // Bits of Role.
  bool anonymous = false;

  bool Has(Role role) const { return (roles & static_cast<uint32_t>(role)) != 0; }
  // The roles that imply each other: admin and submitter can view; admin can submit.
  bool CanView() const { return Has(Role::kViewer) || Has(Role::kSubmitter) || Has(Role::kAdmin); }
  bool CanSubmit() const { return Has(Role::kSubmitter) || Has(Role::kAdmin); }
  // "alice (tenant search)" or "anonymous" for log lines and errors.
  std::string Describe() const;
};

// The caller of a server without credentials (loopback only, or --insecure): every role.
Principal AnonymousPrincipal();

// Tenant names become directory names under the allowed roots ({tenant}): 1-63 of [a-z0-9_.-],
// starting with a letter or digit.
bool ValidTenantName(std::string_view tenant);

}  // namespace quantd::server::auth

#endif  // QUANTD_SERVER_AUTH_PRINCIPAL_H_
