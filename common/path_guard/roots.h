// Roots: a set of allowed directories, opened once, and file operations on absolute paths that
// must stay beneath one of them (beneath.h does the confined resolution). A path spelled beneath
// a root (component by component, against the root as configured and its canonical form) is
// resolved beneath the root's descriptor. A path spelled another way (e.g. through a symlink to a
// root) is anchored at its deepest existing directory, opened as it resolves and accepted only when
// that directory really lies beneath a root; the rest is resolved beneath it. "..", relative paths
// and paths beneath no root fail with errno EXDEV.
//
// Copies share the open root descriptors. Thread-safe (const after Open).
#ifndef QUANTD_COMMON_PATH_GUARD_ROOTS_H_
#define QUANTD_COMMON_PATH_GUARD_ROOTS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "path_guard/beneath.h"

namespace quantd::path_guard {

class Roots {
 public:
  // Opens each root (an absolute path to an existing directory; symlinks within a root's own path
  // are followed: roots are configuration, not input). InvalidArgument names the bad root.
  static absl::StatusOr<Roots> Open(const std::vector<std::string>& roots,
                                    Resolver resolver = Resolver::kAuto);
  Roots() = default;  // No roots: every operation fails with EXDEV.

  // errno-style operations on absolute paths (see beneath.h). O_CLOEXEC is always added.
  int OpenFile(const std::string& path, int flags, mode_t mode = 0) const;
  // Creates the missing directories of `path` beneath its root; 0 or -1.
  int MakeDirectories(const std::string& path, mode_t mode = 0755) const;
  // unlinkat() of the last component (AT_REMOVEDIR in flags for a directory); 0 or -1.
  int Unlink(const std::string& path, int flags = 0) const;
  // renameat() between two paths beneath roots; 0 or -1.
  int Rename(const std::string& from, const std::string& to) const;
  // Opens the directory holding `path` beneath its root and sets `*name` to the last component.
  int OpenParent(const std::string& path, std::string* name) const;

  // True when `path` (no "..") is spelled beneath a root, or its deepest existing directory
  // really lies beneath one.
  bool Contains(const std::string& path) const;
  std::vector<std::string> paths() const;

 private:
  struct Root;
  struct Anchor;
  // Where operations on `path` start; false (errno EXDEV) when it is beneath no root.
  bool Locate(const std::string& path, Anchor* anchor) const;

  std::shared_ptr<const std::vector<Root>> roots_;
  Resolver resolver_ = Resolver::kAuto;
};

}  // namespace quantd::path_guard

#endif  // QUANTD_COMMON_PATH_GUARD_ROOTS_H_
