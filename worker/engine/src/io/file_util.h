// Small file-system helpers shared by the readers and writers of the engine: whole-file reads with
// errors that name the path, the temporary-name convention of docs/engine-events.md
// (`.<final name>.quantd-tmp` beside the final file), atomic small-file writes, and SHA-256.
#ifndef QUANTD_ENGINE_IO_FILE_UTIL_H_
#define QUANTD_ENGINE_IO_FILE_UTIL_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "quantd/engine/quantize.h"

namespace quantd::engine {

// Reads a whole file. NotFound / InvalidArgument name the path.
absl::StatusOr<std::string> ReadFileToString(const std::string& path);

// `dir/name` -> `dir/.name.quantd-tmp`.
std::string TemporaryPathFor(const std::string& final_path);

// True when `name` (a file name, not a path) is one of our temporaries.
bool IsTemporaryName(std::string_view name);

// Creates or truncates `path`, writes `content` and fsyncs it.
absl::Status WriteFileAndSync(const std::string& path, std::string_view content);

// Writes `content` to TemporaryPathFor(path), fsyncs it and renames it to `path`; on failure the
// temporary is removed and `path` is untouched.
absl::Status WriteFileAtomically(const std::string& path, std::string_view content);

// Flushes a directory entry table (after renames) so the new names survive a crash.
absl::Status SyncDirectory(const std::string& dir);

// Creates `dir` and its parents when missing; an existing non-directory is InvalidArgument.
absl::Status EnsureDirectory(const std::string& dir, std::string_view what);

// Path, size and lower-case hex SHA-256 of a finished file.
absl::StatusOr<Artifact> DescribeArtifact(const std::string& path);

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_IO_FILE_UTIL_H_
