#include "model/families/gemma_features.h"

#include <optional>

#include "io/status_macros.h"
#include "model/families/family_parsing.h"

namespace quantd::engine {
namespace {

// A positive number or absent/null (0: not used).
absl::StatusOr<double> OptionalPositive(const JsonFields& f, const char* key) {
  QUANTD_ASSIGN_OR_RETURN(std::optional<double> v, f.OptionalNumber(key));
  if (!v.has_value()) return 0.0;
  if (!(*v > 0)) return f.Error(key, "expected a positive number or null");
  return *v;
}

}  // namespace

absl::Status ParseGemmaFeatures(const JsonFields& f, ModelConfig* config) {
  // Gemma's MLP reads hidden_activation; older Gemma 2 configs carry the same in hidden_act.
  QUANTD_RETURN_IF_ERROR(ExpectActivation(
      f, "gelu_pytorch_tanh", f.Has("hidden_activation") ? "hidden_activation" : "hidden_act"));
  QUANTD_RETURN_IF_ERROR(RefuseAttentionBias(f, *config));
  config->norm = NormKind::kRmsOnePlusWeight;
  config->activation = Activation::kGeluTanh;
  config->sandwich_norms = true;
  config->scale_embeddings = true;
  QUANTD_ASSIGN_OR_RETURN(config->query_pre_attn_scalar,
                          OptionalPositive(f, "query_pre_attn_scalar"));
  QUANTD_ASSIGN_OR_RETURN(config->attn_logit_softcapping,
                          OptionalPositive(f, "attn_logit_softcapping"));
  QUANTD_ASSIGN_OR_RETURN(config->final_logit_softcapping,
                          OptionalPositive(f, "final_logit_softcapping"));
  return absl::OkStatus();
}

}  // namespace quantd::engine
