#include "auth/audit_log.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "bounded_text.h"
#include "logging/logging.h"

namespace quantd::server::auth {

void Audit(const Principal* principal, std::string_view method, std::string_view peer,
           std::string_view target, const absl::Status& outcome) {
  std::string who = "unauthenticated";
  if (principal != nullptr) {
    who = principal->anonymous
              ? "principal=anonymous"
              : absl::StrCat("principal=", Quoted(principal->name), " tenant=", principal->tenant);
  }
  std::string line =
      absl::StrCat("audit: ", who, " method=", std::string(method), " peer=", Quoted(peer));
  if (!target.empty()) absl::StrAppend(&line, " target=", Quoted(target));
  absl::StrAppend(&line, " outcome=", absl::StatusCodeToString(outcome.code()));
  if (!outcome.ok())
    absl::StrAppend(&line, " reason=", Quoted(std::string(outcome.message()), 300));
  const std::string job_id =
      target.substr(0, 5) == "jobs/" ? std::string(target.substr(5)) : std::string();
  logging::Log(outcome.ok() ? logging::Level::kInfo : logging::Level::kWarning, line, {job_id, ""});
}

}  // namespace quantd::server::auth
