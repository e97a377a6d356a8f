#include "auth/access_policy.h"

#include "absl/strings/str_cat.h"
#include "bounded_text.h"

namespace quantd::server::auth {
namespace {

const char* ActionName(Action action) {
  switch (action) {
    case Action::kSubmit:
      return "SubmitJob";
    case Action::kGet:
      return "GetJob";
    case Action::kList:
      return "ListJobs";
    case Action::kWatch:
      return "WatchJob";
    case Action::kCancel:
      return "CancelJob";
    case Action::kListWorkers:
      return "ListWorkers";
    case Action::kServeJobs:
      return "WorkerService.Connect";
  }
  return "?";
}

absl::Status Denied(const Principal& principal, Action action, std::string_view why) {
  return absl::PermissionDeniedError(absl::StrCat(principal.Describe(), " may not call ",
                                                  ActionName(action), ": ", std::string(why)));
}

}  // namespace

absl::Status CheckAction(const Principal& principal, Action action) {
  switch (action) {
    case Action::kGet:
    case Action::kList:
    case Action::kWatch:
    case Action::kListWorkers:
      if (principal.CanView()) return absl::OkStatus();
      return Denied(principal, action, "needs the viewer, submitter or admin role");
    case Action::kSubmit:
    case Action::kCancel:
      if (principal.CanSubmit()) return absl::OkStatus();
      return Denied(principal, action, "needs the submitter or admin role");
    case Action::kServeJobs:
      if (principal.Has(Role::kWorker)) return absl::OkStatus();
      return Denied(principal, action, "needs the worker role");
  }
  return Denied(principal, action, "unknown call");
}

absl::Status CheckJobAccess(const Principal& principal, Action action, const v1::Job& job) {
  if (absl::Status s = CheckAction(principal, action); !s.ok()) return s;
  if (principal.Has(Role::kAdmin)) return absl::OkStatus();
  if (job.tenant() != principal.tenant) {
    return Denied(principal, action, absl::StrCat(job.name(), " belongs to another tenant"));
  }
  if (action == Action::kCancel && job.owner() != principal.name) {
    return Denied(principal, action,
                  absl::StrCat(job.name(), " was submitted by ", Quoted(job.owner()),
                               "; a submitter cancels only its own jobs"));
  }
  return absl::OkStatus();
}

absl::Status ScopeListRequest(const Principal& principal, v1::ListJobsRequest& request) {
  if (absl::Status s = CheckAction(principal, Action::kList); !s.ok()) return s;
  if (principal.Has(Role::kAdmin)) return absl::OkStatus();
  if (!request.tenant().empty() && request.tenant() != principal.tenant) {
    return Denied(principal, Action::kList,
                  absl::StrCat("tenant ", Quoted(request.tenant()), " is not its own"));
  }
  request.set_tenant(principal.tenant);
  return absl::OkStatus();
}

}  // namespace quantd::server::auth
