// SHA-256 of a file, as lower-case hex (the Artifact.sha256 format).
#ifndef QUANTD_WORKER_DAEMON_FILE_DIGEST_H_
#define QUANTD_WORKER_DAEMON_FILE_DIGEST_H_

#include <string>

#include "absl/status/statusor.h"

namespace quantd::worker {

absl::StatusOr<std::string> Sha256File(const std::string& path);

}  // namespace quantd::worker

#endif  // QUANTD_WORKER_DAEMON_FILE_DIGEST_H_
