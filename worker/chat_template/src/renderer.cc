#include "renderer.h"

#include <cmath>
#include <ctime>
#include <map>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "access.h"
#include "errors.h"
#include "filters.h"
#include "operators.h"

namespace quantd::chat_template {
namespace {

using Frame = std::map<std::string, Value>;

// Jinja2 renders out of control flow with exceptions; we use a flag the loop checks.
enum class Flow { kNormal, kBreak, kContinue };

absl::StatusOr<Value> RaiseException(const CallArgs& args) {
  std::string message = args.positional.empty() ? "" : ToPythonStr(args.positional[0]);
  return absl::InvalidArgumentError(absl::StrCat("raise_exception: ", message));
}

absl::StatusOr<Value> StrftimeNow(const CallArgs& args) {
  if (args.positional.empty() || !args.positional[0].is_string()) {
    return absl::InvalidArgumentError("strftime_now() expects a format string");
  }
  std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char buf[256];
  size_t n = std::strftime(buf, sizeof(buf), args.positional[0].as_string().c_str(), &local);
  return Value::String(std::string(buf, n));
}

// namespace(...) and dict(...) both take mappings and keyword arguments.
absl::StatusOr<ValueDict> CollectEntries(const CallArgs& args, const char* function) {
  ValueDict entries;
  for (const Value& p : args.positional) {
    if (!p.is_dict()) {
      return absl::InvalidArgumentError(absl::StrCat(function, "() takes a mapping or keywords"));
    }
    for (const auto& e : p.dict()) entries.push_back(e);
  }
  for (const auto& e : args.keyword) entries.push_back(e);
  return entries;
}

absl::StatusOr<Value> MakeNamespace(const CallArgs& args) {
  QCT_ASSIGN(entries, CollectEntries(args, "namespace"));
  return Value::Namespace(std::move(entries));
}

absl::StatusOr<Value> MakeDict(const CallArgs& args) {
  QCT_ASSIGN(entries, CollectEntries(args, "dict"));
  return Value::Dict(std::move(entries));
}

absl::StatusOr<Value> Range(const CallArgs& args) {
  std::vector<int64_t> n;
  for (const Value& v : args.positional) {
    if (!v.is_number() || v.is_float()) return absl::InvalidArgumentError("range() needs integers");
    n.push_back(v.as_int());
  }
  if (n.empty() || n.size() > 3) return absl::InvalidArgumentError("range() takes 1 to 3 integers");
  int64_t start = n.size() == 1 ? 0 : n[0];
  int64_t stop = n.size() == 1 ? n[0] : n[1];
  int64_t step = n.size() == 3 ? n[2] : 1;
  if (step == 0) return absl::InvalidArgumentError("range() step must not be zero");
  if ((stop - start) / step > 100000) return absl::InvalidArgumentError("range() too large");
  ValueList out;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) out.push_back(Value::Int(i));
  return Value::List(std::move(out));
}

class Renderer {
 public:
  explicit Renderer(const Value& context) {
    globals_["raise_exception"] = Value::Function("raise_exception", RaiseException);
    globals_["strftime_now"] = Value::Function("strftime_now", StrftimeNow);
    globals_["namespace"] = Value::Function("namespace", MakeNamespace);
    globals_["dict"] = Value::Function("dict", MakeDict);
    globals_["range"] = Value::Function("range", Range);
    Frame root;
    for (const auto& [k, v] : context.dict()) root[k] = v;
    frames_.push_back(std::move(root));
  }

  absl::StatusOr<std::string> Run(const NodeList& nodes) {
    Flow flow = Flow::kNormal;
    QCT_RETURN_IF_ERROR(RenderNodes(nodes, &flow));
    return std::move(out_);
  }

 private:
  absl::Status RenderNodes(const NodeList& nodes, Flow* flow) {
    for (const NodePtr& node : nodes) {
      QCT_RETURN_IF_ERROR(RenderNode(*node, flow));
      if (*flow != Flow::kNormal) return absl::OkStatus();
    }
    return absl::OkStatus();
  }

  absl::Status RenderNode(const Node& node, Flow* flow) {
    switch (node.kind) {
      case Node::Kind::kText:
        out_ += node.text;
        return absl::OkStatus();
      case Node::Kind::kOutput: {
        QCT_ASSIGN(v, Eval(*node.expr));
        out_ += ToPythonStr(v);
        return absl::OkStatus();
      }
      case Node::Kind::kIf:
        for (size_t i = 0; i < node.conditions.size(); ++i) {
          QCT_ASSIGN(cond, Eval(*node.conditions[i]));
          if (cond.Truthy()) return RenderNodes(node.bodies[i], flow);
        }
        return RenderNodes(node.else_body, flow);
      case Node::Kind::kFor:
        return RenderFor(node);
      case Node::Kind::kSet: {
        QCT_ASSIGN(v, Eval(*node.expr));
        return Assign(node, v);
      }
      case Node::Kind::kSetBlock: {
        std::string saved;
        std::swap(saved, out_);
        Flow inner = Flow::kNormal;
        absl::Status s = RenderNodes(node.body, &inner);
        std::swap(saved, out_);
        QCT_RETURN_IF_ERROR(s);
        frames_.back()[node.targets[0]] = Value::String(saved);
        return absl::OkStatus();
      }
      case Node::Kind::kGeneration: {
        // transformers renders the body through a call block, so assignments stay inside it.
        frames_.emplace_back();
        absl::Status s = RenderNodes(node.body, flow);
        frames_.pop_back();
        return s;
      }
      case Node::Kind::kMacro:
        frames_.back()[node.text] = MakeMacro(node);
        return absl::OkStatus();
      case Node::Kind::kBreak:
      case Node::Kind::kContinue:
        if (loop_depth_ == 0) {
          return SyntaxError(node.line, "'break'/'continue' outside a for loop");
        }
        *flow = node.kind == Node::Kind::kBreak ? Flow::kBreak : Flow::kContinue;
        return absl::OkStatus();
    }
    return absl::OkStatus();
  }

  absl::Status Bind(const std::vector<std::string>& targets, const Value& v, int line,
                    Frame* frame) {
    if (targets.size() == 1) {
      (*frame)[targets[0]] = v;
      return absl::OkStatus();
    }
    auto items = Iterate(v);
    if (!items.ok()) return AtLine(line, items.status());
    if (items->size() != targets.size()) {
      return SyntaxError(line, absl::StrCat("cannot unpack ", items->size(), " values into ",
                                            targets.size(), " names"));
    }
    for (size_t i = 0; i < targets.size(); ++i) (*frame)[targets[i]] = (*items)[i];
    return absl::OkStatus();
  }

  absl::Status Assign(const Node& node, const Value& v) {
    const std::string& target = node.targets[0];
    size_t dot = target.find('.');
    if (dot == std::string::npos) return Bind(node.targets, v, node.line, &frames_.back());
    std::string ns_name = target.substr(0, dot);
    std::string attr = target.substr(dot + 1);
    Value ns = Lookup(ns_name);
    if (!ns.is_namespace()) {
      return SyntaxError(node.line, absl::StrCat("cannot assign attribute '", attr, "' on '",
                                                 ns_name, "': not a namespace()"));
    }
    for (auto& [k, e] : ns.mutable_namespace()) {
      if (k == attr) {
        e = v;
        return absl::OkStatus();
      }
    }
    ns.mutable_namespace().emplace_back(attr, v);
    return absl::OkStatus();
  }

  absl::Status RenderFor(const Node& node) {
    QCT_ASSIGN(iterable, Eval(*node.expr));
    auto items_or = Iterate(iterable);
    if (!items_or.ok()) return AtLine(node.line, items_or.status());
    ValueList items = *std::move(items_or);
    if (node.filter) {
      ValueList kept;
      for (const Value& item : items) {
        frames_.emplace_back();
        absl::Status s = Bind(node.targets, item, node.line, &frames_.back());
        absl::StatusOr<Value> keep = s.ok() ? Eval(*node.filter) : absl::StatusOr<Value>(s);
        frames_.pop_back();
        if (!keep.ok()) return keep.status();
        if (keep->Truthy()) kept.push_back(item);
      }
      items = std::move(kept);
    }
    if (items.empty()) {
      Flow flow = Flow::kNormal;
      return RenderNodes(node.else_body, &flow);
    }
    const int64_t n = static_cast<int64_t>(items.size());
    ++loop_depth_;
    for (int64_t i = 0; i < n; ++i) {
      frames_.emplace_back();
      Frame& frame = frames_.back();
      absl::Status s = Bind(node.targets, items[static_cast<size_t>(i)], node.line, &frame);
      ValueDict loop = {
          {"index", Value::Int(i + 1)},    {"index0", Value::Int(i)},
          {"revindex", Value::Int(n - i)}, {"revindex0", Value::Int(n - i - 1)},
          {"first", Value::Bool(i == 0)},  {"last", Value::Bool(i == n - 1)},
          {"length", Value::Int(n)},       {"depth", Value::Int(1)},
          {"depth0", Value::Int(0)},
      };
      if (i > 0) loop.emplace_back("previtem", items[static_cast<size_t>(i - 1)]);
      if (i + 1 < n) loop.emplace_back("nextitem", items[static_cast<size_t>(i + 1)]);
      loop.emplace_back(
          "cycle",
          Value::Function("loop.cycle", [i](const CallArgs& args) -> absl::StatusOr<Value> {
            if (args.positional.empty())
              return absl::InvalidArgumentError("loop.cycle() needs values");
            return args.positional[static_cast<size_t>(i) % args.positional.size()];
          }));
      frame["loop"] = Value::Dict(std::move(loop));
      Flow flow = Flow::kNormal;
      if (s.ok()) s = RenderNodes(node.body, &flow);
      frames_.pop_back();
      if (!s.ok()) {
        --loop_depth_;
        return s;
      }
      if (flow == Flow::kBreak) break;
    }
    --loop_depth_;
    return absl::OkStatus();
  }

  // A macro sees the template's top-level variables as they are when it is called, and the
  // enclosing loop scopes as they were when it was defined (Jinja2 compiles it to a closure).
  Value MakeMacro(const Node& node) {
    const Node* macro = &node;
    auto enclosing = std::make_shared<const std::vector<Frame>>(frames_.begin() + 1, frames_.end());
    return Value::Function(
        node.text, [this, macro, enclosing](const CallArgs& args) -> absl::StatusOr<Value> {
          if (macro_depth_ >= kMaxMacroDepth) {
            return absl::InvalidArgumentError(absl::StrCat(
                "macro '", macro->text, "' nested more than ", kMaxMacroDepth, " calls deep"));
          }
          if (args.positional.size() > macro->targets.size()) {
            return absl::InvalidArgumentError(absl::StrCat("macro '", macro->text, "' takes ",
                                                           macro->targets.size(), " arguments"));
          }
          Frame params;
          for (size_t i = 0; i < macro->targets.size(); ++i) {
            const std::string& name = macro->targets[i];
            std::optional<Value> v;
            if (i < args.positional.size()) v = args.positional[i];
            for (const auto& [k, kv] : args.keyword) {
              if (k == name) v = kv;
            }
            if (!v && macro->defaults[i]) {
              QCT_ASSIGN(d, Eval(*macro->defaults[i]));
              v = d;
            }
            params[name] = v ? *v : Value::Undefined(absl::StrCat("'", name, "' is undefined"));
          }
          std::vector<Frame> saved_frames = {frames_.front()};
          saved_frames.insert(saved_frames.end(), enclosing->begin(), enclosing->end());
          saved_frames.push_back(std::move(params));
          std::swap(saved_frames, frames_);
          std::string saved_out;
          std::swap(saved_out, out_);
          int saved_depth = loop_depth_;
          loop_depth_ = 0;
          Flow flow = Flow::kNormal;
          ++macro_depth_;
          absl::Status s = RenderNodes(macro->body, &flow);
          --macro_depth_;
          loop_depth_ = saved_depth;
          std::swap(saved_out, out_);
          std::swap(saved_frames, frames_);
          if (!s.ok()) return s;
          return Value::String(saved_out);
        });
  }

  Value Lookup(const std::string& name) const {
    for (auto it = frames_.rbegin(); it != frames_.rend(); ++it) {
      auto found = it->find(name);
      if (found != it->end()) return found->second;
    }
    auto g = globals_.find(name);
    if (g != globals_.end()) return g->second;
    return Value::Undefined(absl::StrCat("'", name, "' is undefined"));
  }

  absl::StatusOr<CallArgs> EvalArgs(const Expr& e, size_t first) {
    CallArgs args;
    for (size_t i = first; i < e.items.size(); ++i) {
      QCT_ASSIGN(v, Eval(*e.items[i]));
      args.positional.push_back(std::move(v));
    }
    for (const auto& [k, x] : e.kwargs) {
      QCT_ASSIGN(v, Eval(*x));
      args.keyword.emplace_back(k, std::move(v));
    }
    return args;
  }

  absl::StatusOr<std::optional<int64_t>> EvalSliceBound(const Expr* e) {
    if (e == nullptr) return std::optional<int64_t>();
    QCT_ASSIGN(v, Eval(*e));
    if (v.is_none()) return std::optional<int64_t>();
    if (!v.is_number() || v.is_float()) {
      return SyntaxError(e->line, "slice indices must be integers or None");
    }
    return std::optional<int64_t>(v.as_int());
  }

  absl::StatusOr<Value> Eval(const Expr& e) {
    absl::StatusOr<Value> v = EvalUnwrapped(e);
    if (!v.ok()) return AtLine(e.line, v.status());
    return v;
  }

  absl::StatusOr<Value> EvalUnwrapped(const Expr& e) {
    switch (e.kind) {
      case Expr::Kind::kLiteral:
        return e.value;
      case Expr::Kind::kName:
        return Lookup(e.name);
      case Expr::Kind::kList: {
        ValueList items;
        for (const ExprPtr& item : e.items) {
          QCT_ASSIGN(v, Eval(*item));
          items.push_back(std::move(v));
        }
        return e.name == "tuple" ? Value::Tuple(std::move(items)) : Value::List(std::move(items));
      }
      case Expr::Kind::kDict: {
        ValueDict items;
        for (size_t i = 0; i + 1 < e.items.size(); i += 2) {
          QCT_ASSIGN(k, Eval(*e.items[i]));
          QCT_ASSIGN(v, Eval(*e.items[i + 1]));
          if (!k.is_string()) return absl::InvalidArgumentError("dict keys must be strings");
          bool replaced = false;
          for (auto& [ek, ev] : items) {
            if (ek == k.as_string()) {
              ev = v;
              replaced = true;
            }
          }
          if (!replaced) items.emplace_back(k.as_string(), std::move(v));
        }
        return Value::Dict(std::move(items));
      }
      case Expr::Kind::kGetAttr: {
        QCT_ASSIGN(obj, Eval(*e.items[0]));
        return GetAttr(obj, e.name);
      }
      case Expr::Kind::kGetItem: {
        QCT_ASSIGN(obj, Eval(*e.items[0]));
        QCT_ASSIGN(key, Eval(*e.items[1]));
        return GetItem(obj, key);
      }
      case Expr::Kind::kSlice: {
        QCT_ASSIGN(obj, Eval(*e.items[0]));
        QCT_ASSIGN(start, EvalSliceBound(e.items[1].get()));
        QCT_ASSIGN(stop, EvalSliceBound(e.items[2].get()));
        QCT_ASSIGN(step, EvalSliceBound(e.items[3].get()));
        return Slice(obj, start, stop, step);
      }
      case Expr::Kind::kCall: {
        QCT_ASSIGN(callee, Eval(*e.items[0]));
        QCT_ASSIGN(args, EvalArgs(e, 1));
        if (callee.is_undefined()) {
          return absl::InvalidArgumentError(callee.undefined_hint());
        }
        if (!callee.is_callable()) {
          return absl::InvalidArgumentError(
              absl::StrCat("'", callee.TypeName(), "' object is not callable"));
        }
        return callee.callable().fn(args);
      }
      case Expr::Kind::kFilter: {
        QCT_ASSIGN(input, Eval(*e.items[0]));
        QCT_ASSIGN(args, EvalArgs(e, 1));
        return ApplyFilter(e.name, input, args);
      }
      case Expr::Kind::kTest: {
        QCT_ASSIGN(input, Eval(*e.items[0]));
        QCT_ASSIGN(args, EvalArgs(e, 1));
        QCT_ASSIGN(result, ApplyTest(e.name, input, args));
        return Value::Bool(result != e.negated);
      }
      case Expr::Kind::kNot: {
        QCT_ASSIGN(v, Eval(*e.items[0]));
        return Value::Bool(!v.Truthy());
      }
      case Expr::Kind::kNegate:
      case Expr::Kind::kPlus: {
        QCT_ASSIGN(v, Eval(*e.items[0]));
        return UnaryOp(e.kind == Expr::Kind::kNegate ? "-" : "+", v);
      }
      case Expr::Kind::kBinary: {
        QCT_ASSIGN(a, Eval(*e.items[0]));
        QCT_ASSIGN(b, Eval(*e.items[1]));
        return BinaryOp(e.name, a, b);
      }
      case Expr::Kind::kAnd:
      case Expr::Kind::kOr: {
        QCT_ASSIGN(a, Eval(*e.items[0]));
        if (a.Truthy() == (e.kind == Expr::Kind::kOr)) return a;
        return Eval(*e.items[1]);
      }
      case Expr::Kind::kCompare: {
        QCT_ASSIGN(left, Eval(*e.items[0]));
        for (size_t i = 0; i < e.ops.size(); ++i) {
          QCT_ASSIGN(right, Eval(*e.items[i + 1]));
          QCT_ASSIGN(ok, CompareOp(e.ops[i], left, right));
          if (!ok) return Value::Bool(false);
          left = std::move(right);
        }
        return Value::Bool(true);
      }
      case Expr::Kind::kConditional: {
        QCT_ASSIGN(cond, Eval(*e.items[0]));
        if (cond.Truthy()) return Eval(*e.items[1]);
        if (e.items[2]) return Eval(*e.items[2]);
        return Value::Undefined("the inline if-expression evaluated to false and had no else");
      }
    }
    return absl::InternalError("unknown expression kind");
  }

  std::map<std::string, Value> globals_;
  std::vector<Frame> frames_;
  std::string out_;
  int loop_depth_ = 0;
  // Bounds recursive macros, which would otherwise exhaust the stack.
  static constexpr int kMaxMacroDepth = 64;
  int macro_depth_ = 0;
};

}  // namespace

absl::StatusOr<std::string> RenderTemplate(const NodeList& nodes, const Value& context) {
  if (!context.is_dict()) return absl::InvalidArgumentError("render context must be an object");
  Renderer renderer(context);
  return renderer.Run(nodes);
}

}  // namespace quantd::chat_template
