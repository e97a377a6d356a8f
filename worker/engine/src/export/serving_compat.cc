#include "export/serving_compat.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/types/span.h"

namespace quantd::engine {
namespace {

// One vLLM Linear shard: the merged q/k/v or gate/up (their sub-shards' output rows in `parts`),
// or a row-parallel o / down.
struct Shard {
  std::string name;
  int64_t in_part = 0, in_full = 0, out_part = 0;
  std::vector<int64_t> parts;  // output rows of each merged sub-shard
};

struct Kernel {
  const char* name;
  // Empty when the kernel implements the shard, else why not.
  std::string (*check)(const Shard&, const QuantFormat&);
};

std::string MarlinShape(const Shard& s, int group) {
  if (s.out_part % 64 != 0) return absl::StrCat("output ", s.out_part, " % 64 != 0");
  if (s.in_part % 128 != 0) return absl::StrCat("input ", s.in_part, " % 128 != 0");
  if (group > 0 && group < s.in_full && s.in_part % group != 0) {
    return absl::StrCat("input ", s.in_part, " % group ", group, " != 0");
  }
  return "";
}

std::string AwqMarlin(const Shard& s, const QuantFormat& f) { return MarlinShape(s, f.group_size); }

std::string AwqGemm(const Shard& s, const QuantFormat& f) {
  if (ScaleDtypeOf(f) != OutputDtype::kFloat16 || f.output_dtype != OutputDtype::kFloat16) {
    return "float16 only";
  }
  if (f.group_size > 0 && s.in_part % f.group_size != 0) {
    return absl::StrCat("input ", s.in_part, " % group ", f.group_size, " != 0");
  }
  return "";
}

std::string Machete(const Shard& s, const QuantFormat& f) {
  if (f.group_size != kPerChannelGroup && f.group_size != 64 && f.group_size != 128) {
    return absl::StrCat("group ", f.group_size, " not in {-1, 64, 128}");
  }
  if (s.in_part % 64 != 0) return absl::StrCat("input ", s.in_part, " % 64 != 0");
  if (s.out_part % 128 != 0) return absl::StrCat("output ", s.out_part, " % 128 != 0");
  return "";
}

std::string Marlin(const Shard& s, const QuantFormat& f) { return MarlinShape(s, f.group_size); }

std::string Exllama(const Shard& s, const QuantFormat& f) {
  if (f.zero_point) return "symmetric weights only (uint4b8)";
  if (f.output_dtype != OutputDtype::kFloat16) return "float16 activations only";
  if (s.out_part % 8 != 0) return absl::StrCat("output ", s.out_part, " % 8 != 0");
  if (f.group_size > 0 && s.in_full % f.group_size != 0) {
    return absl::StrCat("input ", s.in_full, " % group ", f.group_size, " != 0");
  }
  return "";
}

constexpr Kernel kAwqKernels[] = {{"awq_marlin (sm80+)", AwqMarlin}, {"awq (GEMM)", AwqGemm}};
constexpr Kernel kCompressedTensorsKernels[] = {
    {"Machete (sm90)", Machete}, {"Marlin (sm80+)", Marlin}, {"Exllama", Exllama}};

// The shards of one layer at TP `tp`, or why vLLM cannot shard it.
std::string LayerShards(int64_t hidden, int64_t heads, int64_t kv_heads, int64_t head_dim,
                        int64_t inter, const std::string& mlp, int tp, std::vector<Shard>* out) {
  if (heads % tp != 0) {
    return absl::StrCat(heads, " attention heads are not divisible by ", tp);
  }
  if (kv_heads % tp != 0 && tp % kv_heads != 0) {
    return absl::StrCat(kv_heads, " KV heads neither divide nor are divisible by ", tp);
  }
  if (inter % tp != 0) return absl::StrCat(mlp, " intermediate size ", inter, " % ", tp, " != 0");
  const int64_t q = heads / tp * head_dim;
  const int64_t kv = std::max<int64_t>(1, kv_heads / tp) * head_dim;
  const int64_t i = inter / tp;
  out->push_back({"qkv_proj", hidden, hidden, q + 2 * kv, {q, kv, kv}});
  out->push_back({"o_proj", heads * head_dim / tp, heads * head_dim, hidden, {hidden}});
  out->push_back({mlp + "gate_up_proj", hidden, hidden, 2 * i, {i, i}});
  out->push_back({mlp + "down_proj", i, inter, hidden, {hidden}});
  return "";
}

// The format's own rules for a shard (loading, before any kernel).
std::string FormatRule(const Shard& s, const QuantFormat& f) {
  for (int64_t p : s.parts) {
    if (p % 8 != 0) {
      return absl::StrCat(s.name, ": a shard of ", p, " output rows is not a multiple of 8 (the ",
                          f.format == CheckpointFormat::kAwqGemm ? "qweight/qzeros" : "zero point",
                          " packing)");
    }
  }
  if (f.group_size > 0 && s.in_part % f.group_size != 0) {
    return absl::StrCat(s.name, ": input ", s.in_part, " per shard is not a multiple of group ",
                        f.group_size, " (vLLM issue 21695)");
  }
  return "";
}

}  // namespace

std::vector<TensorParallelFit> ServingCompatibility(const ModelConfig& c, const QuantFormat& f) {
  const bool ct = f.format == CheckpointFormat::kCompressedTensors;
  const int64_t kv = c.num_key_value_heads > 0 ? c.num_key_value_heads : c.num_attention_heads;
  int64_t moe_inter = 0;
  if (auto it = c.raw.find("moe_intermediate_size"); it != c.raw.end() && it->is_number_integer()) {
    moe_inter = it->get<int64_t>();
  }
  std::vector<TensorParallelFit> fits;
  for (int tp : kTensorParallelSizes) {
    TensorParallelFit fit;
    fit.size = tp;
    std::vector<Shard> shards;
    std::string why = LayerShards(c.hidden_size, c.num_attention_heads, kv, c.head_dim,
                                  c.intermediate_size, "mlp.", tp, &shards);
    if (why.empty() && moe_inter > 0) {
      std::vector<Shard> experts;
      why = LayerShards(c.hidden_size, c.num_attention_heads, kv, c.head_dim, moe_inter,
                        "mlp.experts.", tp, &experts);
      for (Shard& s : experts) {
        if (s.name.rfind("mlp.experts.", 0) == 0) shards.push_back(std::move(s));
      }
    }
    for (size_t i = 0; why.empty() && i < shards.size(); ++i) why = FormatRule(shards[i], f);
    // vLLM picks, per Linear, the first kernel (in its priority order) that implements it.
    const absl::Span<const Kernel> kernels =
        ct ? absl::MakeConstSpan(kCompressedTensorsKernels) : absl::MakeConstSpan(kAwqKernels);
    std::vector<bool> used(kernels.size(), false);
    for (size_t i = 0; why.empty() && i < shards.size(); ++i) {
      std::vector<std::string> refusals;
      size_t k = 0;
      for (; k < kernels.size(); ++k) {
        std::string r = kernels[k].check(shards[i], f);
        if (r.empty()) break;
        refusals.push_back(absl::StrCat(kernels[k].name, ": ", r));
      }
      if (k == kernels.size()) {
        why =
            absl::StrCat(shards[i].name, ": no vLLM kernel (", absl::StrJoin(refusals, "; "), ")");
      } else {
        used[k] = true;
      }
    }
    for (size_t k = 0; why.empty() && k < kernels.size(); ++k) {
      if (used[k]) fit.kernels.push_back(kernels[k].name);
    }
    fit.servable = why.empty();
    fit.reason = why;
    fits.push_back(std::move(fit));
  }
  return fits;
}

}  // namespace quantd::engine
