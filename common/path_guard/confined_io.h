// Process-wide confinement of a process's file opens to allowed roots: quantize-awq calls
// ConfineProcess() with the job's roots when quantd-worker runs it, and the engine's readers and
// writers (and the tokenizer and chat-template loaders) open, create, rename and remove files
// through the functions below. Unconfined (the one-shot CLI), they are plain open(2), rename(2),
// unlink(2) and mkdir -p.
//
// errno-style like beneath.h, so call sites that report strerror(errno) change by one call; use
// ErrorText(errno) to word "outside the allowed roots".
#ifndef QUANTD_COMMON_PATH_GUARD_CONFINED_IO_H_
#define QUANTD_COMMON_PATH_GUARD_CONFINED_IO_H_

#include <sys/types.h>

#include <istream>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "path_guard/roots.h"

namespace quantd::path_guard {

// Confines every later call below to `roots` (call once, before other threads start).
absl::Status ConfineProcess(const std::vector<std::string>& roots);
// The roots given to ConfineProcess, or null when unconfined.
const Roots* ProcessRoots();

int Open(const std::string& path, int flags, mode_t mode = 0);
int Rename(const std::string& from, const std::string& to);
int Unlink(const std::string& path);
// mkdir -p; 0 or -1.
int MakeDirectories(const std::string& path, mode_t mode = 0755);
// A buffered input stream over Open(path, O_RDONLY); null with errno set when it cannot be opened.
std::unique_ptr<std::istream> OpenInputStream(const std::string& path);

}  // namespace quantd::path_guard

#endif  // QUANTD_COMMON_PATH_GUARD_CONFINED_IO_H_
