// quantd: the control plane. Accepts jobs over gRPC, stores them durably and schedules them.
#include <cstdio>

int main() {
  std::fprintf(stderr, "quantd: not implemented yet (issue 5: the service)\n");
  return 2;
}
