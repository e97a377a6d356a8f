// The registry of supported decoder families: one ArchitectureSpec per family (model/families/),
// listed once in registry.cc. Adding a family is adding its file and a line there.
#ifndef QUANTD_ENGINE_MODEL_REGISTRY_H_
#define QUANTD_ENGINE_MODEL_REGISTRY_H_

#include <string>
#include <string_view>

#include "absl/types/span.h"
#include "model/architecture.h"

namespace quantd::engine {

// All supported families, in a fixed order.
absl::Span<const ArchitectureSpec* const> SupportedArchitectures();

// The record for a Hugging Face class name ("Gemma2ForCausalLM"), or nullptr.
const ArchitectureSpec* FindArchitecture(std::string_view hf_class);

// The record accepting a config.json "model_type" ("gemma2"), or nullptr.
const ArchitectureSpec* FindArchitectureByModelType(std::string_view model_type);

// A record by its short name ("gemma2"), or nullptr.
const ArchitectureSpec* FindArchitectureByName(std::string_view name);

// "LlamaForCausalLM (llama), Qwen2ForCausalLM (qwen2), ..." for error messages.
std::string SupportedArchitectureList();

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_MODEL_REGISTRY_H_
