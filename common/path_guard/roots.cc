#include "path_guard/roots.h"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace quantd::path_guard {

struct Roots::Root {
  // Normalised components of the root as given and, when it differs, of its canonical path.
  std::vector<std::vector<std::string>> components;
  std::string path;
  int fd = -1;
  ~Root() {
    if (fd >= 0) ::close(fd);
  }
  Root() = default;
  Root(Root&& other) noexcept
      : components(std::move(other.components)),
        path(std::move(other.path)),
        fd(std::exchange(other.fd, -1)) {}
};

namespace {

// Components of an absolute path, "." dropped; false for "..", relative paths or NUL bytes.
bool Components(const std::string& path, std::vector<std::string>* out) {
  out->clear();
  if (path.empty() || path.front() != '/' || path.find('\0') != std::string::npos) return false;
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    if (part == ".") continue;
    if (part == "..") return false;
    out->emplace_back(part);
  }
  return true;
}

}  // namespace

absl::StatusOr<Roots> Roots::Open(const std::vector<std::string>& paths, Resolver resolver) {
  auto roots = std::make_shared<std::vector<Root>>();
  for (const std::string& path : paths) {
    Root root;
    root.path = path;
    std::vector<std::string> parts;
    if (!Components(path, &parts)) {
      return absl::InvalidArgumentError(
          absl::StrCat("allowed root \"", path, "\" is not an absolute path without \"..\""));
    }
    root.components.push_back(parts);
    root.fd = ::open(path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root.fd < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "allowed root \"", path, "\" cannot be opened as a directory: ", ErrorText(errno)));
    }
    char canonical[PATH_MAX];
    if (::realpath(path.c_str(), canonical) != nullptr && Components(canonical, &parts) &&
        parts != root.components.front()) {
      root.components.push_back(parts);
    }
    roots->push_back(std::move(root));
  }
  Roots result;
  result.roots_ = std::move(roots);
  result.resolver_ = resolver;
  return result;
}

// Where an operation on a path starts: a directory descriptor beneath a root (the root's own, or
// one this lookup opened) and the rest of the path below it.
struct Roots::Anchor {
  int fd = -1;
  bool owned = false;
  std::string relative;
  ~Anchor() {
    if (owned && fd >= 0) {
      const int saved = errno;
      ::close(fd);
      errno = saved;
    }
  }
};

bool Roots::Locate(const std::string& path, Anchor* anchor) const {
  std::vector<std::string> parts;
  if (!roots_ || !Components(path, &parts)) {
    errno = EXDEV;
    return false;
  }
  // Spelled beneath a root: resolved beneath the root's descriptor.
  for (const Root& root : *roots_) {
    for (const std::vector<std::string>& prefix : root.components) {
      if (prefix.size() > parts.size() ||
          !std::equal(prefix.begin(), prefix.end(), parts.begin())) {
        continue;
      }
      anchor->fd = root.fd;
      anchor->relative =
          absl::StrJoin(parts.begin() + static_cast<long>(prefix.size()), parts.end(), "/");
      return true;
    }
  }
  // Spelled another way (through a symlink to a root): the deepest existing directory of the path
  // is opened as it resolves, and accepted only if the directory it reached lies beneath a root
  // (its real location, read from the descriptor: a later swap cannot change what was opened).
  for (size_t k = parts.size() - (parts.empty() ? 0 : 1); k > 0; --k) {
    const std::string prefix = "/" + absl::StrJoin(parts.begin(), parts.begin() + k, "/");
    const int fd = ::open(prefix.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) continue;
    char real[PATH_MAX];
    const ssize_t n =
        ::readlink(absl::StrCat("/proc/self/fd/", fd).c_str(), real, sizeof(real) - 1);
    std::vector<std::string> real_parts;
    if (n > 0) real[n] = '\0';
    if (n > 0 && Components(real, &real_parts)) {
      for (const Root& root : *roots_) {
        for (const std::vector<std::string>& root_parts : root.components) {
          if (root_parts.size() <= real_parts.size() &&
              std::equal(root_parts.begin(), root_parts.end(), real_parts.begin())) {
            anchor->fd = fd;
            anchor->owned = true;
            anchor->relative =
                absl::StrJoin(parts.begin() + static_cast<long>(k), parts.end(), "/");
            return true;
          }
        }
      }
    }
    ::close(fd);
    break;  // The deepest existing directory lies outside every root.
  }
  errno = EXDEV;
  return false;
}

bool Roots::Contains(const std::string& path) const {
  Anchor anchor;
  return Locate(path, &anchor);
}

std::vector<std::string> Roots::paths() const {
  std::vector<std::string> out;
  if (roots_) {
    for (const Root& root : *roots_) out.push_back(root.path);
  }
  return out;
}

int Roots::OpenFile(const std::string& path, int flags, mode_t mode) const {
  Anchor anchor;
  if (!Locate(path, &anchor)) return -1;
  return OpenBeneath(anchor.fd, anchor.relative, flags, mode, resolver_);
}

int Roots::MakeDirectories(const std::string& path, mode_t mode) const {
  Anchor anchor;
  if (!Locate(path, &anchor)) return -1;
  const int fd = MakeDirectoriesBeneath(anchor.fd, anchor.relative, mode, resolver_);
  if (fd < 0) return -1;
  ::close(fd);
  return 0;
}

int Roots::OpenParent(const std::string& path, std::string* name) const {
  Anchor anchor;
  if (!Locate(path, &anchor)) return -1;
  const std::string& relative = anchor.relative;
  const size_t slash = relative.rfind('/');
  if (relative.empty()) {
    errno = EPERM;  // A root (or the anchor itself) has no parent beneath it.
    return -1;
  }
  *name = slash == std::string::npos ? relative : relative.substr(slash + 1);
  return OpenBeneath(anchor.fd, slash == std::string::npos ? "" : relative.substr(0, slash),
                     O_PATH | O_DIRECTORY, 0, resolver_);
}

int Roots::Unlink(const std::string& path, int flags) const {
  std::string name;
  const int parent = OpenParent(path, &name);
  if (parent < 0) return -1;
  const int rc = ::unlinkat(parent, name.c_str(), flags);
  const int saved = errno;
  ::close(parent);
  errno = saved;
  return rc;
}

int Roots::Rename(const std::string& from, const std::string& to) const {
  std::string from_name, to_name;
  const int from_parent = OpenParent(from, &from_name);
  if (from_parent < 0) return -1;
  const int to_parent = OpenParent(to, &to_name);
  if (to_parent < 0) {
    const int saved = errno;
    ::close(from_parent);
    errno = saved;
    return -1;
  }
  const int rc = ::renameat(from_parent, from_name.c_str(), to_parent, to_name.c_str());
  const int saved = errno;
  ::close(from_parent);
  ::close(to_parent);
  errno = saved;
  return rc;
}

}  // namespace quantd::path_guard
