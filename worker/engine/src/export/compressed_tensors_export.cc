#include "export/compressed_tensors_export.h"

#include "absl/strings/str_cat.h"
#include "awq/gemm_packing.h"
#include "export/awq_export.h"
#include "io/status_macros.h"

namespace quantd::engine {
namespace {

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The nibble of GEMM-packed rows [rows, out/8] for (row, output channel).
uint32_t GemmNibble(const std::vector<int32_t>& packed, int64_t words, int64_t row, int64_t n) {
  const uint32_t word = static_cast<uint32_t>(packed[static_cast<size_t>(row * words + n / 8)]);
  return (word >> (4 * kAwqReverseOrder[n % 8])) & 0xFu;
}

}  // namespace

std::vector<PlannedTensor> PlanCompressedTensorsStateDict(const std::vector<PlannedTensor>& awq,
                                                          bool zero_point, DType dtype) {
  std::vector<PlannedTensor> plan;
  plan.reserve(awq.size() + awq.size() / 3);
  for (size_t i = 0; i < awq.size(); ++i) {
    const PlannedTensor& t = awq[i];
    if (EndsWith(t.name, ".qweight")) {
      // qweight [in, out/8], qzeros [groups, out/8], scales [groups, out] follow in this order.
      const std::string base = t.name.substr(0, t.name.size() - 8);
      const int64_t in = t.shape[0];
      const int64_t out = t.shape[1] * 8;
      const int64_t groups = awq[i + 1].shape[0];
      plan.push_back({base + ".weight_packed", DType::kI32, {out, in / 8}});
      plan.push_back({base + ".weight_scale", dtype, {out, groups}});
      if (zero_point) plan.push_back({base + ".weight_zero_point", DType::kI32, {out / 8, groups}});
      plan.push_back({base + ".weight_shape", DType::kI64, {2}});
      i += 2;  // qzeros, scales
      continue;
    }
    PlannedTensor copy = t;
    if (copy.dtype != DType::kI32) copy.dtype = dtype;
    plan.push_back(std::move(copy));
  }
  return plan;
}

nlohmann::json CompressedTensorsQuantizationConfig(const QuantFormat& f,
                                                   const std::vector<std::string>& ignore) {
  const bool channel = f.group_size == kPerChannelGroup;
  nlohmann::json weights = {
      {"num_bits", f.bits},
      {"type", "int"},
      {"symmetric", !f.zero_point},
      {"strategy", channel ? "channel" : "group"},
      {"group_size", channel ? nlohmann::json(nullptr) : nlohmann::json(f.group_size)},
      {"dynamic", false},
      {"actorder", nullptr}};
  return {{"quant_method", "compressed-tensors"},
          {"format", "pack-quantized"},
          {"quantization_status", "compressed"},
          {"config_groups",
           {{"group_0",
             {{"targets", {"Linear"}},
              {"weights", weights},
              {"input_activations", nullptr},
              {"output_activations", nullptr},
              {"format", "pack-quantized"}}}}},
          {"ignore", ignore},
          {"kv_cache_scheme", nullptr},
          {"sparsity_config", nlohmann::json::object()}};
}

CompressedTensorsLinear RepackCompressedTensors(const PackedLinear& g, bool zero_point) {
  CompressedTensorsLinear c;
  c.groups = g.scales.dim(0);
  c.out_features = g.scales.dim(1);
  c.in_features = static_cast<int64_t>(g.qweight.size()) * 8 / c.out_features;
  const int64_t out = c.out_features, in = c.in_features, groups = c.groups;
  const int64_t gemm_words = out / 8;
  // Word (n, kw) gathers input columns 8kw..8kw+7 of output row n: eight GEMM rows read in order.
  const int64_t in_words = in / 8;
  c.weight_packed.resize(static_cast<size_t>(out * in_words));
  for (int64_t kw = 0; kw < in_words; ++kw) {
    for (int64_t n = 0; n < out; ++n) {
      uint32_t word = 0;
      for (int64_t i = 0; i < 8; ++i)
        word |= GemmNibble(g.qweight, gemm_words, 8 * kw + i, n) << (4 * i);
      c.weight_packed[static_cast<size_t>(n * in_words + kw)] = static_cast<int32_t>(word);
    }
  }
  if (zero_point) {  // word (nw, g) gathers output rows 8nw..8nw+7 of group g
    c.weight_zero_point.resize(static_cast<size_t>(out / 8 * groups));
    for (int64_t nw = 0; nw < out / 8; ++nw) {
      for (int64_t gi = 0; gi < groups; ++gi) {
        uint32_t word = 0;
        for (int64_t i = 0; i < 8; ++i)
          word |= GemmNibble(g.qzeros, gemm_words, gi, 8 * nw + i) << (4 * i);
        c.weight_zero_point[static_cast<size_t>(nw * groups + gi)] = static_cast<int32_t>(word);
      }
    }
  }
  c.weight_scale.resize(static_cast<size_t>(out * groups));
  for (int64_t gi = 0; gi < groups; ++gi) {
    for (int64_t n = 0; n < out; ++n) {
      c.weight_scale[static_cast<size_t>(n * groups + gi)] =
          g.scales.data[static_cast<size_t>(gi * out + n)];
    }
  }
  return c;
}

GemmPackedLinear GemmFromCompressedTensors(const CompressedTensorsLinear& c,
                                           const std::vector<uint16_t>& weight_scale_bits,
                                           DType scale_dtype) {
  const int64_t out = c.out_features, in = c.in_features, groups = c.groups;
  const int64_t gemm_words = out / 8, in_words = in / 8;
  GemmPackedLinear g;
  g.in_features = in;
  g.out_features = out;
  g.group_size = in / groups;
  g.scale_dtype = scale_dtype;
  auto put = [gemm_words](std::vector<int32_t>& packed, int64_t row, int64_t n, uint32_t v) {
    uint32_t& word =
        reinterpret_cast<uint32_t&>(packed[static_cast<size_t>(row * gemm_words + n / 8)]);
    word |= (v & 0xFu) << (4 * kAwqReverseOrder[n % 8]);
  };
  g.qweight.assign(static_cast<size_t>(in * gemm_words), 0);
  for (int64_t n = 0; n < out; ++n) {
    for (int64_t kw = 0; kw < in_words; ++kw) {
      const auto word =
          static_cast<uint32_t>(c.weight_packed[static_cast<size_t>(n * in_words + kw)]);
      for (int64_t i = 0; i < 8; ++i) put(g.qweight, 8 * kw + i, n, word >> (4 * i));
    }
  }
  g.qzeros.assign(static_cast<size_t>(groups * gemm_words), 0);
  for (int64_t gi = 0; gi < groups; ++gi) {
    for (int64_t n = 0; n < out; ++n) {
      uint32_t zero = 8;  // symmetric: codes are q + 8 around zero
      if (!c.weight_zero_point.empty()) {
        const auto word =
            static_cast<uint32_t>(c.weight_zero_point[static_cast<size_t>(n / 8 * groups + gi)]);
        zero = word >> (4 * (n % 8));
      }
      put(g.qzeros, gi, n, zero);
    }
  }
  g.scales.resize(static_cast<size_t>(groups * out));
  for (int64_t gi = 0; gi < groups; ++gi) {
    for (int64_t n = 0; n < out; ++n) {
      g.scales[static_cast<size_t>(gi * out + n)] =
          weight_scale_bits[static_cast<size_t>(n * groups + gi)];
    }
  }
  return g;
}

absl::Status WriteCompressedTensorsLinear(CheckpointWriter* writer, const std::string& base,
                                          const PackedLinear& gemm, bool zero_point) {
  const CompressedTensorsLinear c = RepackCompressedTensors(gemm, zero_point);
  QUANTD_RETURN_IF_ERROR(writer->WriteInt32(base + ".weight_packed", c.weight_packed));
  QUANTD_RETURN_IF_ERROR(writer->WriteFloatPart(base + ".weight_scale", 0, c.weight_scale));
  if (zero_point) {
    QUANTD_RETURN_IF_ERROR(writer->WriteInt32(base + ".weight_zero_point", c.weight_zero_point));
  }
  const int64_t shape[2] = {c.out_features, c.in_features};
  QUANTD_RETURN_IF_ERROR(writer->WriteInt64(base + ".weight_shape", shape));
  return WriteLinearBias(writer, base, gemm.bias);
}

}  // namespace quantd::engine
