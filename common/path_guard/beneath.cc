#include "path_guard/beneath.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace quantd::path_guard {
namespace {

// Closes a descriptor on scope exit unless released.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) {
      const int saved = errno;
      ::close(fd_);
      errno = saved;
    }
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd) {
    Fd old(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

int Fail(int err) {
  errno = err;
  return -1;
}

bool IsSymlinkAt(int dir_fd, const std::string& name) {
  struct stat st;
  return ::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
}

int Openat2(int dir_fd, const std::string& relative, int flags, mode_t mode) {
  open_how how;
  std::memset(&how, 0, sizeof(how));
  how.flags = static_cast<uint64_t>(flags);
  how.mode = (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? mode : 0;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  for (int attempt = 0;; ++attempt) {
    const long fd = ::syscall(SYS_openat2, dir_fd, relative.c_str(), &how, sizeof(how));
    if (fd >= 0) return static_cast<int>(fd);
    // EAGAIN: a concurrent rename raced the lookup; the kernel asks to retry.
    if (errno == EINTR || (errno == EAGAIN && attempt < 16)) continue;
    return -1;
  }
}

// One component at a time, never following a symlink.
int WalkOpen(int dir_fd, const std::vector<std::string>& parts, int flags, mode_t mode) {
  Fd current(::openat(dir_fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (current.get() < 0) return -1;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    const int next =
        ::openat(current.get(), parts[i].c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0) return Fail(IsSymlinkAt(current.get(), parts[i]) ? ELOOP : errno);
    current.reset(next);
  }
  if (parts.empty()) return ::openat(current.get(), ".", flags, mode);
  const std::string& last = parts.back();
  const int fd = ::openat(current.get(), last.c_str(), flags | O_NOFOLLOW, mode);
  if (fd < 0) return Fail(errno == ENOTDIR && IsSymlinkAt(current.get(), last) ? ELOOP : errno);
  if (flags & O_PATH) {  // O_PATH | O_NOFOLLOW opens a symlink itself instead of failing.
    struct stat st;
    if (::fstat(fd, &st) == 0 && S_ISLNK(st.st_mode)) {
      ::close(fd);
      return Fail(ELOOP);
    }
  }
  return fd;
}

}  // namespace

bool KernelHasOpenat2() {
  static const bool has = [] {
    const int fd = Openat2(AT_FDCWD, ".", O_PATH | O_CLOEXEC, 0);
    if (fd >= 0) ::close(fd);
    return fd >= 0 || errno != ENOSYS;
  }();
  return has;
}

bool SplitRelative(std::string_view relative, std::vector<std::string>* components) {
  components->clear();
  if (!relative.empty() && relative.front() == '/') {
    errno = EXDEV;
    return false;
  }
  for (absl::string_view part : absl::StrSplit(absl::string_view(relative.data(), relative.size()),
                                               '/', absl::SkipEmpty())) {
    if (part == ".") continue;
    if (part == "..") {
      errno = EXDEV;
      return false;
    }
    components->emplace_back(part);
  }
  return true;
}

int OpenBeneath(int dir_fd, std::string_view relative, int flags, mode_t mode, Resolver resolver) {
  std::vector<std::string> parts;
  if (!SplitRelative(relative, &parts)) return -1;
  flags |= O_CLOEXEC;
  if (resolver == Resolver::kOpenat2 || (resolver == Resolver::kAuto && KernelHasOpenat2())) {
    return Openat2(dir_fd, parts.empty() ? std::string(".") : absl::StrJoin(parts, "/"), flags,
                   mode);
  }
  return WalkOpen(dir_fd, parts, flags, mode);
}

int MakeDirectoriesBeneath(int dir_fd, std::string_view relative, mode_t mode, Resolver resolver) {
  std::vector<std::string> parts;
  if (!SplitRelative(relative, &parts)) return -1;
  Fd current(::openat(dir_fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (current.get() < 0) return -1;
  for (const std::string& part : parts) {
    int next = OpenBeneath(current.get(), part, O_PATH | O_DIRECTORY, 0, resolver);
    if (next < 0 && errno == ENOENT) {
      if (::mkdirat(current.get(), part.c_str(), mode) != 0 && errno != EEXIST) return -1;
      next = OpenBeneath(current.get(), part, O_PATH | O_DIRECTORY, 0, resolver);
    }
    if (next < 0) return -1;
    current.reset(next);
  }
  return current.release();
}

bool LexicallyInside(std::string_view path, std::string_view directory) {
  const absl::string_view p(path.data(), path.size()), d(directory.data(), directory.size());
  std::vector<absl::string_view> dir = absl::StrSplit(d, '/', absl::SkipEmpty());
  std::vector<absl::string_view> file = absl::StrSplit(p, '/', absl::SkipEmpty());
  if (p.empty() || p.front() != '/' || d.empty() || d.front() != '/' || file.size() <= dir.size()) {
    return false;
  }
  for (size_t i = 0; i < file.size(); ++i) {
    if (file[i] == ".." || file[i] == ".") return false;
    if (i < dir.size() && file[i] != dir[i]) return false;
  }
  return true;
}

std::string ErrorText(int err) {
  if (err == EXDEV) {
    return "leads outside the allowed roots (through \"..\", an absolute path or a symbolic "
           "link)";
  }
  if (err == ELOOP && !KernelHasOpenat2()) {
    return "is or passes through a symbolic link, which is not followed here (this kernel has no "
           "openat2 to check where it leads)";
  }
  return std::strerror(err);
}

}  // namespace quantd::path_guard
