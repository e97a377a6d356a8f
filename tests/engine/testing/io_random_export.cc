#include "io_random_export.h"

#include <random>

#include "io/checkpoint_reader.h"
#include "io/status_macros.h"
#include "model/architecture.h"

namespace quantd::engine::testing {

std::vector<int32_t> PackAwqGemm(const std::vector<uint8_t>& codes, int64_t rows, int64_t cols) {
  static constexpr int kOrder[8] = {0, 2, 4, 6, 1, 3, 5, 7};
  std::vector<int32_t> packed(static_cast<size_t>(rows * (cols / 8)));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols / 8; ++c) {
      uint32_t word = 0;
      for (int i = 0; i < 8; ++i) {
        word |= static_cast<uint32_t>(codes[r * cols + 8 * c + kOrder[i]] & 15) << (4 * i);
      }
      packed[r * (cols / 8) + c] = static_cast<int32_t>(word);
    }
  }
  return packed;
}

absl::StatusOr<std::vector<Artifact>> ExportRandomAwq(const ExportOptions& options, uint64_t seed) {
  QUANTD_ASSIGN_OR_RETURN(SourceModel model, OpenSourceModel(options.model_dir, options.group_size,
                                                             options.modules_to_not_convert));
  QUANTD_ASSIGN_OR_RETURN(std::unique_ptr<AwqExporter> exporter,
                          AwqExporter::Create(model.config, options));
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> nibble(0, 15);
  std::uniform_real_distribution<float> scale(1e-3f, 2e-2f);
  auto codes = [&](int64_t n) {
    std::vector<uint8_t> v(static_cast<size_t>(n));
    for (uint8_t& x : v) x = static_cast<uint8_t>(nibble(rng));
    return v;
  };
  const int64_t g = options.group_size;
  for (int layer = 0; layer < model.config.num_hidden_layers; ++layer) {
    QUANTD_ASSIGN_OR_RETURN(LayerWeights w, model.weights->LoadLayer(model.config, layer));
    for (const LinearSpec& spec : LayerLinears(model.config)) {
      if (spec.source != spec.name) {
        return absl::UnimplementedError("random exports of fused Linears are not written");
      }
      const std::string& name = spec.name;
      const LinearWeights* linear = FindLinear(w, name);
      if (IsNotConverted(LayerTensorName(layer, name), options.modules_to_not_convert)) {
        QUANTD_RETURN_IF_ERROR(exporter->WriteFloatLinear(layer, name, *linear));
        continue;
      }
      const int64_t in = linear->in_features(), out = linear->out_features();
      PackedLinear p;
      p.qweight = PackAwqGemm(codes(in * out), in, out);
      p.qzeros = PackAwqGemm(codes(in / g * out), in / g, out);
      p.scales = Tensor({in / g, out});
      for (float& s : p.scales.data) s = scale(rng);
      p.bias = linear->bias;
      QUANTD_RETURN_IF_ERROR(exporter->WriteLinear(layer, name, p));
    }
    QUANTD_RETURN_IF_ERROR(exporter->WriteLayerFloats(layer, TakeFloatTensors(model.config, &w)));
  }
  QUANTD_ASSIGN_OR_RETURN(Tensor embed, model.weights->LoadEmbedding());
  QUANTD_RETURN_IF_ERROR(exporter->WriteFloat(kEmbedTokensName, embed));
  QUANTD_ASSIGN_OR_RETURN(Tensor norm, model.weights->LoadFinalNorm());
  QUANTD_RETURN_IF_ERROR(exporter->WriteFloat(kFinalNormName, norm));
  if (!model.config.tie_word_embeddings) {
    QUANTD_ASSIGN_OR_RETURN(Tensor head, model.weights->LoadLmHead(model.config));
    QUANTD_RETURN_IF_ERROR(exporter->WriteFloat(kLmHeadName, head));
  }
  return exporter->Commit();
}

}  // namespace quantd::engine::testing
