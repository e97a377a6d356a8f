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

const Roots::Root* Roots::Locate(const std::string& path, std::string* relative) const {
  std::vector<std::string> parts;
  if (!Components(path, &parts)) {
    errno = EXDEV;
    return nullptr;
  }
  if (roots_) {
    for (const Root& root : *roots_) {
      for (const std::vector<std::string>& prefix : root.components) {
        if (prefix.size() > parts.size() ||
            !std::equal(prefix.begin(), prefix.end(), parts.begin())) {
          continue;
        }
        *relative =
            absl::StrJoin(parts.begin() + static_cast<long>(prefix.size()), parts.end(), "/");
        return &root;
      }
    }
  }
  errno = EXDEV;
  return nullptr;
}

bool Roots::Contains(const std::string& path) const {
  std::string relative;
  return Locate(path, &relative) != nullptr;
}

std::vector<std::string> Roots::paths() const {
  std::vector<std::string> out;
  if (roots_) {
    for (const Root& root : *roots_) out.push_back(root.path);
  }
  return out;
}

int Roots::OpenFile(const std::string& path, int flags, mode_t mode) const {
  std::string relative;
  const Root* root = Locate(path, &relative);
  if (root == nullptr) return -1;
  return OpenBeneath(root->fd, relative, flags, mode, resolver_);
}

int Roots::MakeDirectories(const std::string& path, mode_t mode) const {
  std::string relative;
  const Root* root = Locate(path, &relative);
  if (root == nullptr) return -1;
  const int fd = MakeDirectoriesBeneath(root->fd, relative, mode, resolver_);
  if (fd < 0) return -1;
  ::close(fd);
  return 0;
}

int Roots::OpenParent(const std::string& path, std::string* name) const {
  std::string relative;
  const Root* root = Locate(path, &relative);
  if (root == nullptr) return -1;
  const size_t slash = relative.rfind('/');
  if (relative.empty()) {
    errno = EPERM;  // The root itself has no parent beneath it.
    return -1;
  }
  *name = slash == std::string::npos ? relative : relative.substr(slash + 1);
  return OpenBeneath(root->fd, slash == std::string::npos ? "" : relative.substr(0, slash),
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
