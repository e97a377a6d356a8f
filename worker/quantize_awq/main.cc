// quantize-awq: the one-shot local quantizer with the interface of the seed's quantize_awq.py.
#include <cstdio>

int main() {
  std::fprintf(stderr, "quantize-awq: not implemented yet (issue 4: the AWQ engine on CPU)\n");
  return 2;
}
