// StagedFiles: a set of output files written under temporary names (`.<name>.quantd-tmp`, see
// docs/engine-events.md) and renamed into place together by Commit(). Until then no final name
// exists; Abort() — or destruction without Commit() — removes every temporary.
#ifndef QUANTD_ENGINE_IO_STAGED_FILES_H_
#define QUANTD_ENGINE_IO_STAGED_FILES_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace quantd::engine {

class StagedFiles {
 public:
  explicit StagedFiles(std::string dir) : dir_(std::move(dir)) {}
  ~StagedFiles() { Abort(); }
  StagedFiles(const StagedFiles&) = delete;
  StagedFiles& operator=(const StagedFiles&) = delete;

  const std::string& dir() const { return dir_; }
  std::string FinalPath(std::string_view name) const;

  // Registers `name` (a file name in dir()) and returns the temporary path to write it at.
  // Registering the same name twice is an error.
  absl::StatusOr<std::string> Add(std::string_view name);

  // Writes `content` to the temporary of `name` and fsyncs it.
  absl::Status AddContent(std::string_view name, std::string_view content);

  // Final names in registration order.
  std::vector<std::string> names() const;

  // Renames every temporary to its final name (in registration order), then fsyncs the directory.
  // The temporaries must be complete and fsynced by their writers.
  absl::Status Commit();

  // Removes every temporary not yet renamed. Safe to call more than once.
  void Abort();
  // Forgets the temporaries without removing them (they hold an interrupted run's progress).
  void Release() { done_ = true; }

 private:
  std::string dir_;
  std::vector<std::string> names_;
  bool done_ = false;
};

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_IO_STAGED_FILES_H_
