#include "model/moe_config.h"

#include <cstdint>
#include <optional>

#include "absl/strings/str_cat.h"
#include "io/json_file.h"
#include "io/status_macros.h"

namespace quantd::engine {
namespace {

// A positive integer field; `fallback` when absent (nullopt: required).
absl::StatusOr<int> Positive(const JsonFields& f, const char* key, std::optional<int> fallback) {
  QUANTD_ASSIGN_OR_RETURN(std::optional<int64_t> v, f.OptionalInt(key));
  if (!v.has_value()) {
    if (fallback.has_value()) return *fallback;
    return f.Error(key, "missing (expected a positive integer)");
  }
  if (*v <= 0 || *v > (int64_t{1} << 30)) {
    return f.Error(key, absl::StrCat("expected a positive integer, found ", *v));
  }
  return static_cast<int>(*v);
}

// The expert count: transformers 4.x Qwen configs say num_experts, Mixtral and every
// transformers 5.x config num_local_experts. Both present must agree.
absl::StatusOr<int> ExpertCount(const JsonFields& f, MoeStyle style) {
  const bool has_qwen = f.Has("num_experts");
  const bool has_local = f.Has("num_local_experts");
  if (!has_qwen && !has_local) {
    return f.Error(style == MoeStyle::kMixtral ? "num_local_experts" : "num_experts",
                   "missing (expected the number of experts, num_experts or num_local_experts)");
  }
  std::optional<int> a, b;
  if (has_qwen) {
    QUANTD_ASSIGN_OR_RETURN(a, Positive(f, "num_experts", std::nullopt));
  }
  if (has_local) {
    QUANTD_ASSIGN_OR_RETURN(b, Positive(f, "num_local_experts", std::nullopt));
  }
  if (a && b && *a != *b) {
    return f.Error("num_local_experts",
                   absl::StrCat(*b, " disagrees with num_experts ", *a, " of the same file"));
  }
  return a ? *a : *b;
}

// decoder_sparse_step and mlp_only_layers, which must leave every layer sparse.
absl::Status CheckAllLayersSparse(const JsonFields& f, int num_hidden_layers) {
  QUANTD_ASSIGN_OR_RETURN(int step, Positive(f, "decoder_sparse_step", 1));
  if (step != 1 && num_hidden_layers > 0) {
    return f.Unsupported("decoder_sparse_step",
                         absl::StrCat(step,
                                      " makes some layers dense; only models whose every "
                                      "layer is sparse (step 1) are supported"));
  }
  const nlohmann::json* only = f.Find("mlp_only_layers");
  if (only == nullptr) return absl::OkStatus();
  if (!only->is_array()) {
    return f.Error("mlp_only_layers",
                   absl::StrCat("expected a list of layer indices, found ", only->dump()));
  }
  for (const nlohmann::json& v : *only) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= num_hidden_layers) {
      return f.Error("mlp_only_layers", absl::StrCat("expected layer indices in [0, ",
                                                     num_hidden_layers, "), found ", v.dump()));
    }
  }
  if (!only->empty()) {
    return f.Unsupported("mlp_only_layers",
                         absl::StrCat(only->dump(),
                                      " makes those layers dense; only models whose "
                                      "every layer is sparse are supported"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ParseMoeConfig(const JsonFields& f, MoeStyle style, int num_hidden_layers,
                            MoeConfig* moe) {
  *moe = MoeConfig();
  if (style == MoeStyle::kNone) return absl::OkStatus();
  moe->style = style;
  QUANTD_ASSIGN_OR_RETURN(moe->num_experts, ExpertCount(f, style));
  QUANTD_ASSIGN_OR_RETURN(moe->experts_per_token, Positive(f, "num_experts_per_tok", std::nullopt));
  if (moe->experts_per_token > moe->num_experts) {
    return f.Error("num_experts_per_tok",
                   absl::StrCat(moe->experts_per_token, " exceeds the number of experts (",
                                moe->num_experts, ")"));
  }
  if (style == MoeStyle::kMixtral) {
    // MixtralSparseMoeBlock always renormalises the top-k weights; every layer is sparse.
    QUANTD_ASSIGN_OR_RETURN(moe->expert_intermediate_size,
                            Positive(f, "intermediate_size", std::nullopt));
    moe->norm_topk_prob = true;
    return absl::OkStatus();
  }
  QUANTD_ASSIGN_OR_RETURN(moe->expert_intermediate_size,
                          Positive(f, "moe_intermediate_size", std::nullopt));
  // Qwen2MoeConfig / Qwen3MoeConfig default norm_topk_prob to false.
  QUANTD_ASSIGN_OR_RETURN(std::optional<bool> norm, f.OptionalBool("norm_topk_prob"));
  moe->norm_topk_prob = norm.value_or(false);
  QUANTD_RETURN_IF_ERROR(CheckAllLayersSparse(f, num_hidden_layers));
  if (style == MoeStyle::kQwen2) {
    QUANTD_ASSIGN_OR_RETURN(moe->shared_expert_intermediate_size,
                            Positive(f, "shared_expert_intermediate_size", std::nullopt));
  }
  return absl::OkStatus();
}

}  // namespace quantd::engine
