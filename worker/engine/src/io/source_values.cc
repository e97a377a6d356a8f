#include "io/source_values.h"

#include <algorithm>
#include <vector>

#include "core/parallel_for.h"
#include "io/checkpoint_reader.h"
#include "io/safetensors_file.h"

namespace quantd::engine {
namespace {

// Values one thread converts at a time (1 MiB of float32): a CUDA upload's 32 MiB slice keeps
// 16 threads busy.
constexpr int64_t kPieceValues = int64_t{1} << 18;

}  // namespace

absl::Status ReadSourceValues(const SourceValues& src, int64_t first, int64_t n, float* out,
                              int threads) {
  const auto width = static_cast<size_t>(DTypeSize(src.dtype));
  const int64_t pieces = (n + kPieceValues - 1) / kPieceValues;
  std::vector<absl::Status> status(static_cast<size_t>(pieces));
  ParallelForEach(pieces, threads, [&](int64_t p) {
    const int64_t at = p * kPieceValues;
    const int64_t m = std::min(kPieceValues, n - at);
    const uint8_t* bytes = src.bytes + static_cast<size_t>(first + at) * width;
    src.file->ConvertReleasing(src.dtype, {bytes, static_cast<size_t>(m) * width}, out + at);
    status[static_cast<size_t>(p)] =
        CheckFiniteWeights(src.file->path(), src.tensor, out + at, static_cast<size_t>(m),
                           static_cast<size_t>(src.first + first + at));
  });
  for (absl::Status& s : status) {
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status MaterializeLayer(LayerWeights* layer) {
  std::vector<LinearWeights*> linears;
  ForEachLinear(layer, [&](LinearWeights& l) {
    if (l.source.has_value()) linears.push_back(&l);
  });
  std::vector<absl::Status> status(linears.size());
  ParallelForEach(static_cast<int64_t>(linears.size()), LayerReadThreads(), [&](int64_t i) {
    LinearWeights& l = *linears[static_cast<size_t>(i)];
    l.weight.data.resize(static_cast<size_t>(l.source->count));
    status[static_cast<size_t>(i)] =
        ReadSourceValues(*l.source, 0, l.source->count, l.weight.ptr(), /*threads=*/1);
  });
  for (size_t i = 0; i < linears.size(); ++i) {
    if (!status[i].ok()) return status[i];
    linears[i]->source.reset();
  }
  return absl::OkStatus();
}

}  // namespace quantd::engine
