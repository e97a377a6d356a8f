#include "io/staged_files.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "io/file_util.h"
#include "path_guard/confined_io.h"

namespace quantd::engine {

std::string StagedFiles::FinalPath(std::string_view name) const {
  return (std::filesystem::path(dir_) / std::string(name)).string();
}

absl::StatusOr<std::string> StagedFiles::Add(std::string_view name) {
  if (done_) return absl::FailedPreconditionError("output files were already committed or aborted");
  if (name.empty() || name.find('/') != std::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", std::string(name), "\" is not a file name"));
  }
  if (std::find(names_.begin(), names_.end(), name) != names_.end()) {
    return absl::InternalError(absl::StrCat("output file ", std::string(name), " staged twice"));
  }
  names_.emplace_back(name);
  return TemporaryPathFor(FinalPath(name));
}

absl::Status StagedFiles::AddContent(std::string_view name, std::string_view content) {
  absl::StatusOr<std::string> tmp = Add(name);
  if (!tmp.ok()) return tmp.status();
  return WriteFileAndSync(*tmp, content);
}

std::vector<std::string> StagedFiles::names() const { return names_; }

absl::Status StagedFiles::Commit() {
  if (done_) return absl::FailedPreconditionError("output files were already committed or aborted");
  for (size_t i = 0; i < names_.size(); ++i) {
    std::string final_path = FinalPath(names_[i]);
    std::string tmp = TemporaryPathFor(final_path);
    if (path_guard::Rename(tmp, final_path) != 0) {
      absl::Status error = absl::InternalError(absl::StrCat(
          "cannot rename ", tmp, " to ", final_path, ": ", path_guard::ErrorText(errno)));
      // Leave nothing half-committed under a final name.
      for (size_t j = 0; j < i; ++j) path_guard::Unlink(FinalPath(names_[j]));
      Abort();
      return error;
    }
  }
  done_ = true;
  return SyncDirectory(dir_);
}

void StagedFiles::Abort() {
  if (done_) return;
  for (const std::string& name : names_) path_guard::Unlink(TemporaryPathFor(FinalPath(name)));
  done_ = true;
}

}  // namespace quantd::engine
