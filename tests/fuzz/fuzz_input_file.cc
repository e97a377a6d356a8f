#include "fuzz_input_file.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace quantd::fuzz {
namespace {

void WriteAll(int fd, const uint8_t* data, size_t size) {
  if (ftruncate(fd, 0) != 0) std::abort();
  size_t done = 0;
  while (done < size) {
    const ssize_t n = pwrite(fd, data + done, size - done, static_cast<off_t>(done));
    if (n <= 0) std::abort();
    done += static_cast<size_t>(n);
  }
}

}  // namespace

const std::string& InputAsFile(const uint8_t* data, size_t size) {
  static const int fd = memfd_create("fuzz-input", 0);
  static const std::string path = "/proc/self/fd/" + std::to_string(fd);
  WriteAll(fd, data, size);
  return path;
}

const std::string& InputInDirectory(const std::string& name, const uint8_t* data, size_t size) {
  static const std::string dir = [] {
    char pattern[] = "/tmp/quantd-fuzz-XXXXXX";
    if (mkdtemp(pattern) == nullptr) std::abort();
    return std::string(pattern);
  }();
  const int fd = open((dir + "/" + name).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) std::abort();
  WriteAll(fd, data, size);
  close(fd);
  return dir;
}

}  // namespace quantd::fuzz
