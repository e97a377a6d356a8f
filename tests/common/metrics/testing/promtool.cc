#include "promtool.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

namespace quantd::metrics::testing {

PromtoolResult PromtoolCheckMetrics(const std::string& exposition) {
  char path[] = "/tmp/quantd-promtool-XXXXXX";
  int fd = mkstemp(path);
  PromtoolResult result;
  if (fd < 0) {
    result.output = "mkstemp failed";
    return result;
  }
  close(fd);
  std::ofstream(path, std::ios::binary) << exposition;
  std::string command = std::string("promtool check metrics < ") + path + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe != nullptr) {
    char buffer[4096];
    size_t n;
    while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) result.output.append(buffer, n);
    int status = pclose(pipe);
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  std::remove(path);
  return result;
}

}  // namespace quantd::metrics::testing
