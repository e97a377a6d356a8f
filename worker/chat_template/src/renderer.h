// Renderer: walks the syntax tree with a context and produces the output text, with Jinja2's
// scoping (a for-loop iteration is its own scope; namespace() objects are shared and mutable),
// loop controls, macros, and the globals transformers installs (raise_exception, strftime_now)
// besides Jinja2's own (namespace, range, dict).
#ifndef QUANTD_WORKER_CHAT_TEMPLATE_SRC_RENDERER_H_
#define QUANTD_WORKER_CHAT_TEMPLATE_SRC_RENDERER_H_

#include <string>

#include "absl/status/statusor.h"
#include "ast.h"
#include "value.h"

namespace quantd::chat_template {

// `context` must be a dict; its entries become the template's top-level variables.
absl::StatusOr<std::string> RenderTemplate(const NodeList& nodes, const Value& context);

}  // namespace quantd::chat_template

#endif  // QUANTD_WORKER_CHAT_TEMPLATE_SRC_RENDERER_H_
