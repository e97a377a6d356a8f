#include "io/file_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"
#include "io/sha256.h"
#include "path_guard/confined_io.h"

namespace quantd::engine {
namespace {

absl::Status ErrnoError(std::string_view what, const std::string& path) {
  int err = errno;
  std::string message =
      absl::StrCat(std::string(what), " ", path, ": ", path_guard::ErrorText(err));
  if (err == ENOENT) return absl::NotFoundError(message);
  if (err == ENOSPC) return absl::ResourceExhaustedError(message);
  return absl::InternalError(message);
}

// Closes a descriptor on scope exit.
class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser() {
    if (fd_ >= 0) ::close(fd_);
  }
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;

 private:
  int fd_;
};

}  // namespace

absl::StatusOr<std::string> ReadFileToString(const std::string& path) {
  int fd = path_guard::Open(path, O_RDONLY);
  if (fd < 0) return ErrnoError("cannot open", path);
  FdCloser closer(fd);
  struct stat st;
  if (::fstat(fd, &st) != 0) return ErrnoError("cannot stat", path);
  if (S_ISDIR(st.st_mode)) return absl::InvalidArgumentError(absl::StrCat(path, " is a directory"));
  std::string content;
  char buffer[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("cannot read", path);
    }
    if (n == 0) break;
    content.append(buffer, static_cast<size_t>(n));
  }
  return content;
}

std::string TemporaryPathFor(const std::string& final_path) {
  std::filesystem::path p(final_path);
  return (p.parent_path() / absl::StrCat(".", p.filename().string(), ".quantd-tmp")).string();
}

bool IsTemporaryName(std::string_view name) {
  constexpr std::string_view kSuffix = ".quantd-tmp";
  return name.size() > kSuffix.size() + 1 && name.front() == '.' &&
         name.substr(name.size() - kSuffix.size()) == kSuffix;
}

absl::Status WriteFileAndSync(const std::string& path, std::string_view content) {
  // O_NOFOLLOW: a symlink planted at a temporary name must not redirect the write.
  int fd = path_guard::Open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0644);
  if (fd < 0) return ErrnoError("cannot create", path);
  absl::Status status;
  size_t done = 0;
  while (done < content.size() && status.ok()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      status = ErrnoError("cannot write", path);
    } else {
      done += static_cast<size_t>(n);
    }
  }
  if (status.ok() && ::fsync(fd) != 0) status = ErrnoError("cannot fsync", path);
  if (::close(fd) != 0 && status.ok()) status = ErrnoError("cannot close", path);
  return status;
}

absl::Status WriteFileAtomically(const std::string& path, std::string_view content) {
  std::string tmp = TemporaryPathFor(path);
  absl::Status status = WriteFileAndSync(tmp, content);
  if (status.ok() && path_guard::Rename(tmp, path) != 0) {
    status = ErrnoError(absl::StrCat("cannot rename ", tmp, " to"), path);
  }
  if (!status.ok()) {
    path_guard::Unlink(tmp);
    return status;
  }
  return SyncDirectory(std::filesystem::path(path).parent_path().string());
}

absl::Status SyncDirectory(const std::string& dir) {
  std::string d = dir.empty() ? "." : dir;
  int fd = path_guard::Open(d, O_RDONLY | O_DIRECTORY);
  if (fd < 0) return ErrnoError("cannot open directory", d);
  FdCloser closer(fd);
  if (::fsync(fd) != 0 && errno != EINVAL) return ErrnoError("cannot fsync directory", d);
  return absl::OkStatus();
}

absl::Status EnsureDirectory(const std::string& dir, std::string_view what) {
  const int fd = path_guard::Open(dir, O_PATH);
  if (fd >= 0) {
    struct stat st;
    const bool is_dir = ::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
    ::close(fd);
    if (!is_dir) {
      return absl::InvalidArgumentError(
          absl::StrCat(std::string(what), " ", dir, " exists and is not a directory"));
    }
    return absl::OkStatus();
  }
  if (path_guard::MakeDirectories(dir) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("cannot create ", std::string(what), " ", dir,
                                                   ": ", path_guard::ErrorText(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<Artifact> DescribeArtifact(const std::string& path) {
  int fd = path_guard::Open(path, O_RDONLY);
  if (fd < 0) return ErrnoError("cannot open", path);
  FdCloser closer(fd);
  Sha256 sha;
  std::vector<uint8_t> buffer(1 << 20);
  int64_t size = 0;
  for (;;) {
    ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("cannot read", path);
    }
    if (n == 0) break;
    size += n;
    sha.Update(absl::Span<const uint8_t>(buffer.data(), static_cast<size_t>(n)));
  }
  Artifact artifact;
  artifact.path = path;
  artifact.size_bytes = size;
  artifact.sha256 = sha.HexDigest();
  if (artifact.sha256.empty()) return absl::InternalError("OpenSSL SHA-256 failed");
  return artifact;
}

}  // namespace quantd::engine
