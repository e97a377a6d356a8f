#include "auth/principal.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace quantd::server::auth {

std::optional<Role> ParseRole(std::string_view name) {
  for (Role role : {Role::kViewer, Role::kSubmitter, Role::kAdmin, Role::kWorker}) {
    if (RoleName(role) == name) return role;
  }
  return std::nullopt;
}

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kViewer:
      return "viewer";
    case Role::kSubmitter:
      return "submitter";
    case Role::kAdmin:
      return "admin";
    case Role::kWorker:
      return "worker";
  }
  return "unknown";
}

std::string Principal::Describe() const {
  if (anonymous) return "anonymous";
  return absl::StrCat(name, " (tenant ", tenant, ")");
}

Principal AnonymousPrincipal() {
  Principal p;
  p.anonymous = true;
  p.roles = static_cast<uint32_t>(Role::kViewer) | static_cast<uint32_t>(Role::kSubmitter) |
            static_cast<uint32_t>(Role::kAdmin) | static_cast<uint32_t>(Role::kWorker);
  return p;
}

bool ValidTenantName(std::string_view tenant) {
  if (tenant.empty() || tenant.size() > 63) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(tenant.front())) return false;
  return std::all_of(tenant.begin(), tenant.end(),
                     [&](char c) { return alnum(c) || c == '_' || c == '.' || c == '-'; });
}

}  // namespace quantd::server::auth
