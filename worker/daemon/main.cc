// quantd-worker: connects to quantd, advertises its GPUs and runs jobs with the AWQ engine.
#include <cstdio>

int main() {
  std::fprintf(stderr, "quantd-worker: not implemented yet (issue 5: the service)\n");
  return 2;
}
