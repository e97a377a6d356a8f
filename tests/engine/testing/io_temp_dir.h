// A fresh directory under $TMPDIR (or /tmp) for one test, removed with everything in it at the end;
// and listings used to prove that failed runs leave no file under a final name.
#ifndef QUANTD_TESTS_ENGINE_TESTING_IO_TEMP_DIR_H_
#define QUANTD_TESTS_ENGINE_TESTING_IO_TEMP_DIR_H_

#include <string>
#include <vector>

namespace quantd::engine::testing {

class IoTempDir {
 public:
  IoTempDir();
  ~IoTempDir();
  IoTempDir(const IoTempDir&) = delete;
  IoTempDir& operator=(const IoTempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// File names in `dir` (not recursive), sorted; empty when `dir` does not exist.
std::vector<std::string> ListFileNames(const std::string& dir);

// File names in `dir` that are not temporaries (`.<name>.quantd-tmp`).
std::vector<std::string> ListFinalNames(const std::string& dir);

void WriteTextFile(const std::string& path, const std::string& content);

// Writes the first `n` lines of `src` to `dst` (a calibration file's "first 128 texts"); returns
// `dst`.
std::string WriteFirstLines(const std::string& src, int n, const std::string& dst);
std::string ReadTextFile(const std::string& path);

}  // namespace quantd::engine::testing

#endif  // QUANTD_TESTS_ENGINE_TESTING_IO_TEMP_DIR_H_
