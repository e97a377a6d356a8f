#include "path_check.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "bounded_text.h"
#include "path_guard/roots.h"

namespace quantd::server {
namespace {

absl::Status FieldError(std::string_view field, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("spec.", std::string(field), ": ", what));
}

std::string RootList(const std::vector<std::string>& roots) {
  std::vector<std::string> quoted;
  for (const std::string& root : roots) quoted.push_back(Quoted(root, 120));
  return absl::StrJoin(quoted, ", ");
}

// Opens `path` with O_PATH beneath the roots (or plainly, without roots); -1 with errno.
int OpenPath(const path_guard::Roots* roots, const std::string& path, int flags) {
  if (roots != nullptr) return roots->OpenFile(path, O_PATH | flags);
  return ::open(path.c_str(), O_PATH | O_CLOEXEC | flags);
}

}  // namespace

absl::StatusOr<std::string> CheckPathField(const std::vector<std::string>& roots,
                                           std::string_view field, const std::string& value,
                                           PathKind kind) {
  if (value.empty()) return FieldError(field, "required (an absolute path)");
  if (value.size() > kMaxPathBytes) {
    return FieldError(field, absl::StrCat(Quoted(value), " is longer than the ", kMaxPathBytes,
                                          " bytes a path may have"));
  }
  if (value.find('\0') != std::string::npos) {
    return FieldError(field, absl::StrCat(Quoted(value), " contains a NUL byte"));
  }
  if (value.front() != '/') {
    return FieldError(field, absl::StrCat(Quoted(value), " is not absolute"));
  }
  std::vector<std::string> parts;
  for (absl::string_view part : absl::StrSplit(value, '/', absl::SkipEmpty())) {
    if (part == ".") continue;
    if (part == "..") {
      return FieldError(field, absl::StrCat(Quoted(value),
                                            " contains \"..\" (give the path "
                                            "without it)"));
    }
    if (part.size() > kMaxPathComponentBytes) {
      return FieldError(field, absl::StrCat(Quoted(value), " has a component of ", part.size(),
                                            " bytes; the limit is ", kMaxPathComponentBytes));
    }
    parts.emplace_back(part);
  }
  const std::string path = "/" + absl::StrJoin(parts, "/");

  // Only roots that exist can hold anything; none existing is said as such.
  std::vector<std::string> existing;
  for (const std::string& root : roots) {
    struct stat st;
    if (::stat(root.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) existing.push_back(root);
  }
  absl::StatusOr<path_guard::Roots> opened;
  if (!roots.empty()) {
    if (existing.empty()) {
      return FieldError(field, absl::StrCat("none of the allowed roots (", RootList(roots),
                                            ") exists on the server"));
    }
    opened = path_guard::Roots::Open(existing);
    if (!opened.ok()) return FieldError(field, std::string(opened.status().message()));
    if (!opened->Contains(path)) {
      return FieldError(field, absl::StrCat(Quoted(value), " is outside the allowed roots (",
                                            RootList(roots), ")"));
    }
  }
  const path_guard::Roots* guard = roots.empty() ? nullptr : &*opened;
  const int fd = OpenPath(guard, path, 0);
  const int err = errno;
  if (fd < 0) {
    if (err == EXDEV || err == ELOOP) {
      return FieldError(field, absl::StrCat(Quoted(value), " ", path_guard::ErrorText(err), " (",
                                            RootList(roots), ")"));
    }
    if (err == ENOENT && kind == PathKind::kOutputDirectory) return path;  // Created by the job.
    if (err == ENOENT) return FieldError(field, absl::StrCat(Quoted(value), " does not exist"));
    return FieldError(field, absl::StrCat(Quoted(value), ": ", path_guard::ErrorText(err)));
  }
  struct stat st;
  const bool stated = ::fstat(fd, &st) == 0;
  ::close(fd);
  if (!stated) return FieldError(field, absl::StrCat(Quoted(value), " cannot be examined"));
  if ((kind == PathKind::kExistingDirectory || kind == PathKind::kOutputDirectory) &&
      !S_ISDIR(st.st_mode)) {
    return FieldError(field, absl::StrCat(Quoted(value), " is not a directory"));
  }
  if (kind == PathKind::kExistingFile && !S_ISREG(st.st_mode)) {
    return FieldError(field, absl::StrCat(Quoted(value), " is not a file"));
  }
  return path;
}

}  // namespace quantd::server
