// The submit-time check of a job's paths, done the way the worker and the engine will open them
// (path_guard): beneath one of the tenant's allowed roots, never through "..", never through a
// symlink that leads out of the roots. Bad values are INVALID_ARGUMENT naming the field, with the
// value echoed bounded (bounded_text.h); no std::filesystem call here can throw.
#ifndef QUANTD_SERVER_PATH_CHECK_H_
#define QUANTD_SERVER_PATH_CHECK_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace quantd::server {

// Longest path and path component the kernel accepts (PATH_MAX - 1, NAME_MAX).
inline constexpr size_t kMaxPathBytes = 4095;
inline constexpr size_t kMaxPathComponentBytes = 255;

enum class PathKind { kExistingDirectory, kExistingFile, kOutputDirectory };

// Checks `value` of spec field `field` against `roots` (empty: any absolute path). Returns the
// path with "." components and repeated slashes removed.
absl::StatusOr<std::string> CheckPathField(const std::vector<std::string>& roots,
                                           std::string_view field, const std::string& value,
                                           PathKind kind);

}  // namespace quantd::server

#endif  // QUANTD_SERVER_PATH_CHECK_H_
