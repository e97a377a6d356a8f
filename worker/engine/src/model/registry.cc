#include "model/registry.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace quantd::engine {

// Each defined in model/families/<name>.cc.
const ArchitectureSpec& LlamaArchitecture();
const ArchitectureSpec& Qwen2Architecture();
const ArchitectureSpec& MistralArchitecture();
const ArchitectureSpec& Qwen3Architecture();
const ArchitectureSpec& Gemma2Architecture();
const ArchitectureSpec& Gemma3TextArchitecture();
const ArchitectureSpec& Phi3Architecture();
const ArchitectureSpec& Qwen3MoeArchitecture();
const ArchitectureSpec& Qwen2MoeArchitecture();
const ArchitectureSpec& MixtralArchitecture();

absl::Span<const ArchitectureSpec* const> SupportedArchitectures() {
  static const ArchitectureSpec* const kAll[] = {
      &LlamaArchitecture(),   &Qwen2Architecture(),    &MistralArchitecture(),
      &Qwen3Architecture(),   &Gemma2Architecture(),   &Gemma3TextArchitecture(),
      &Phi3Architecture(),    &Qwen3MoeArchitecture(), &Qwen2MoeArchitecture(),
      &MixtralArchitecture(),
  };
  return kAll;
}

const ArchitectureSpec* FindArchitecture(std::string_view hf_class) {
  for (const ArchitectureSpec* a : SupportedArchitectures()) {
    if (hf_class == a->hf_class) return a;
  }
  return nullptr;
}

const ArchitectureSpec* FindArchitectureByModelType(std::string_view model_type) {
  for (const ArchitectureSpec* a : SupportedArchitectures()) {
    for (const std::string& t : a->model_types) {
      if (model_type == t) return a;
    }
  }
  return nullptr;
}

const ArchitectureSpec* FindArchitectureByName(std::string_view name) {
  for (const ArchitectureSpec* a : SupportedArchitectures()) {
    if (name == a->name) return a;
  }
  return nullptr;
}

std::string SupportedArchitectureList() {
  std::string list;
  for (const ArchitectureSpec* a : SupportedArchitectures()) {
    absl::StrAppend(&list, list.empty() ? "" : ", ", a->hf_class, " (model_type ",
                    absl::StrJoin(a->model_types, "/"), ")");
  }
  return list;
}

}  // namespace quantd::engine
