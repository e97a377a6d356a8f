// Encode throughput of quantd's tokenizer on one core, printed as a table.
//
//   tokenizer_bench [MODEL_DIR [TEXT_FILE [REPEATS]]]
//
// Defaults: the Qwen2 tokenizer.json and the first 256 KiB of War and Peace from the build tree's
// test data (tests/data/README.md); docs/perf.md's figures pass the whole book. Rows: the whole
// file in one Encode call (first call, with an empty BPE cache; then the best of REPEATS warm
// calls), and the file's lines encoded one call each (calibration-sized inputs).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "quantd/tokenizer/tokenizer.h"

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

void Row(const char* what, size_t bytes, size_t tokens, double seconds) {
  std::printf("| %-34s | %10.1f | %9zu | %8.3f |\n", what, bytes / seconds / 1e6, tokens, seconds);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string data = QUANTD_TEST_DATA_DIR;
  const std::string model_dir = argc > 1 ? argv[1] : data + "/tokenizers/qwen2";
  const std::string text_file = argc > 2 ? argv[2] : data + "/corpora/war-and-peace.head.txt";
  const int repeats = argc > 3 ? std::max(1, std::atoi(argv[3])) : 5;

  std::ifstream in(text_file, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", text_file.c_str());
    return 1;
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  std::vector<std::string> lines;
  for (std::istringstream ls(text);;) {
    std::string line;
    if (!std::getline(ls, line)) break;
    lines.push_back(line + "\n");
  }

  const auto t0 = Clock::now();
  auto tokenizer = quantd::tokenizer::Tokenizer::FromModelDir(model_dir);
  if (!tokenizer.ok()) {
    std::fprintf(stderr, "%s\n", std::string(tokenizer.status().message()).c_str());
    return 1;
  }
  const auto t1 = Clock::now();
  std::printf("model: %s (loaded in %.2f s)\ntext: %s (%zu bytes, %zu lines)\n\n",
              model_dir.c_str(), Seconds(t0, t1), text_file.c_str(), text.size(), lines.size());
  std::printf("| %-34s | %10s | %9s | %8s |\n", "encode", "MB/s", "tokens", "seconds");
  std::printf("|%s|%s|%s|%s|\n", std::string(36, '-').c_str(), std::string(12, '-').c_str(),
              std::string(11, '-').c_str(), std::string(10, '-').c_str());

  auto start = Clock::now();
  auto ids = (*tokenizer)->Encode(text, false);
  Row("whole file, first call (cold cache)", text.size(), ids->size(),
      Seconds(start, Clock::now()));

  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    start = Clock::now();
    ids = (*tokenizer)->Encode(text, false);
    best = std::min(best, Seconds(start, Clock::now()));
  }
  Row("whole file, warm (best of repeats)", text.size(), ids->size(), best);

  best = 1e30;
  size_t tokens = 0;
  for (int r = 0; r < repeats; ++r) {
    tokens = 0;
    start = Clock::now();
    for (const std::string& line : lines) tokens += (*tokenizer)->Encode(line, false)->size();
    best = std::min(best, Seconds(start, Clock::now()));
  }
  Row("one call per line (best of repeats)", text.size(), tokens, best);
  return 0;
}
