// quantctl: the remote CLI of quantd.
#include <cstdio>

int main() {
  std::fprintf(stderr, "quantctl: not implemented yet (issue 5: the service)\n");
  return 2;
}
