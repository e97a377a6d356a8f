#include "path_guard/confined_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <ext/stdio_filebuf.h>
#include <filesystem>

namespace quantd::path_guard {
namespace {

std::atomic<const Roots*> g_roots{nullptr};

// An istream that owns its stdio_filebuf (which owns the descriptor).
class FdInputStream : public std::istream {
 public:
  explicit FdInputStream(int fd) : std::istream(nullptr), buffer_(fd, std::ios::in, 1 << 16) {
    rdbuf(&buffer_);
  }

 private:
  __gnu_cxx::stdio_filebuf<char> buffer_;
};

}  // namespace

absl::Status ConfineProcess(const std::vector<std::string>& roots) {
  absl::StatusOr<Roots> opened = Roots::Open(roots);
  if (!opened.ok()) return opened.status();
  // Leaked on purpose: descriptors stay open for the life of the process.
  g_roots.store(new Roots(std::move(*opened)));
  return absl::OkStatus();
}

const Roots* ProcessRoots() { return g_roots.load(); }

int Open(const std::string& path, int flags, mode_t mode) {
  if (const Roots* roots = ProcessRoots()) return roots->OpenFile(path, flags, mode);
  return ::open(path.c_str(), flags | O_CLOEXEC, mode);
}

int Rename(const std::string& from, const std::string& to) {
  if (const Roots* roots = ProcessRoots()) return roots->Rename(from, to);
  return ::rename(from.c_str(), to.c_str());
}

int Unlink(const std::string& path) {
  if (const Roots* roots = ProcessRoots()) return roots->Unlink(path);
  return ::unlink(path.c_str());
}

int MakeDirectories(const std::string& path, mode_t mode) {
  if (const Roots* roots = ProcessRoots()) return roots->MakeDirectories(path, mode);
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) {
    errno = ec.value();
    return -1;
  }
  return 0;
}

std::unique_ptr<std::istream> OpenInputStream(const std::string& path) {
  const int fd = Open(path, O_RDONLY);
  if (fd < 0) return nullptr;
  struct stat st;
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    ::close(fd);
    errno = EISDIR;
    return nullptr;
  }
  return std::make_unique<FdInputStream>(fd);
}

}  // namespace quantd::path_guard
