// Opening a path beneath a directory descriptor without leaving that directory: no ".." above it,
// no absolute symlink, no symlink whose target lies outside it, no /proc magic link. The kernel
// checks this atomically with openat2(RESOLVE_BENEATH) (Linux 5.6+), so a directory swapped for a
// symlink between a check and the open cannot redirect it. Where openat2 is missing, a walk opens
// one component at a time with O_NOFOLLOW and refuses every symlink (stricter, equally race-free:
// each step is relative to the descriptor of the previous one).
//
// Functions here are errno-style (a descriptor or 0 on success, -1 with errno set) so that callers
// which already report strerror(errno) need no other change. errno EXDEV means "leads outside";
// ErrorText() words it.
#ifndef QUANTD_COMMON_PATH_GUARD_BENEATH_H_
#define QUANTD_COMMON_PATH_GUARD_BENEATH_H_

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

namespace quantd::path_guard {

enum class Resolver {
  kAuto,     // openat2 when the kernel has it, else kWalk.
  kOpenat2,  // openat2 only (ENOSYS without it).
  kWalk,     // O_NOFOLLOW component walk (what kAuto falls back to).
};

// Splits a relative path into components; false (errno EXDEV) for a ".." component or an
// absolute path. "." and empty components are dropped.
bool SplitRelative(std::string_view relative, std::vector<std::string>* components);

// openat(dir_fd, relative, flags, mode) confined beneath dir_fd. `relative` empty or "." opens the
// directory itself. O_CLOEXEC is always added.
int OpenBeneath(int dir_fd, std::string_view relative, int flags, mode_t mode = 0,
                Resolver resolver = Resolver::kAuto);

// Creates every missing directory of `relative` beneath dir_fd (mkdirat one level at a time, each
// level opened beneath dir_fd). Returns a descriptor (O_PATH | O_DIRECTORY) of the last one.
int MakeDirectoriesBeneath(int dir_fd, std::string_view relative, mode_t mode = 0755,
                           Resolver resolver = Resolver::kAuto);

// True when absolute `path` lies strictly inside `directory` component by component, with no "."
// or ".." (e.g. an artifact an engine reports inside its output directory).
bool LexicallyInside(std::string_view path, std::string_view directory);

// What errno means here, for error messages: EXDEV and ELOOP are said in words.
std::string ErrorText(int err);

// Whether this kernel has openat2 (checked once).
bool KernelHasOpenat2();

}  // namespace quantd::path_guard

#endif  // QUANTD_COMMON_PATH_GUARD_BENEATH_H_
