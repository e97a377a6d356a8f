// quantctl's commands over QuantdClient. Each returns the process exit code:
//   0 success; 1 the job FAILED; 2 usage error or request rejected by the server (invalid
//   argument, unknown job, a limit, ...); 3 the job was CANCELLED; 4 the server could not be
//   reached or failed (UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL, ...); 5 the credential was
//   refused (UNAUTHENTICATED) or does not allow the call (PERMISSION_DENIED).
#ifndef QUANTD_CLIENT_QUANTCTL_COMMANDS_H_
#define QUANTD_CLIENT_QUANTCTL_COMMANDS_H_

#include <map>
#include <string>
#include <vector>

#include "quantd_client.h"

namespace quantd::quantctl {

enum ExitCode {
  kOk = 0,
  kJobFailed = 1,
  kUsage = 2,
  kJobCancelled = 3,
  kUnreachable = 4,
  kDenied = 5
};

struct Output {
  bool json = false;      // -o json: one JSON object per line.
  bool terminal = false;  // stdout is a terminal: progress bar instead of lines.
};

int SubmitCommand(client::QuantdClient& client, const v1::SubmitJobRequest& request, bool follow,
                  const Output& out);
int GetCommand(client::QuantdClient& client, const std::string& job, const Output& out);
int ListCommand(client::QuantdClient& client, const v1::ListJobsRequest& request, bool all,
                const Output& out);
int CancelCommand(client::QuantdClient& client, const std::string& job, const Output& out);
int LogsCommand(client::QuantdClient& client, const std::string& job, bool follow,
                int64_t after_sequence, const Output& out);
int WorkersCommand(client::QuantdClient& client, const Output& out);

// Exit code and stderr message for a failed RPC.
int ReportError(const absl::Status& status);

}  // namespace quantd::quantctl

#endif  // QUANTD_CLIENT_QUANTCTL_COMMANDS_H_
