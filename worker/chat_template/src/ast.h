// Syntax tree of a parsed template: expressions (Expr) and statements (Node).
#ifndef QUANTD_WORKER_CHAT_TEMPLATE_SRC_AST_H_
#define QUANTD_WORKER_CHAT_TEMPLATE_SRC_AST_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "value.h"

namespace quantd::chat_template {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    kLiteral,  // value
    kName,     // name
    kList,     // items
    kDict,     // items: key, value, key, value, ...
    kGetAttr,  // items[0] . name
    kGetItem,  // items[0] [ items[1] ]
    kSlice,    // items[0] [ items[1] : items[2] : items[3] ] (null parts are omitted)
    kCall,     // items[0] ( items[1..] , kwargs )
    kFilter,   // items[0] | name ( items[1..], kwargs )
    kTest,     // items[0] is [not] name ( items[1..] )
    kNot,      // not items[0]
    kNegate,   // - items[0]
    kPlus,     // + items[0]
    kBinary,   // items[0] op items[1]: + - * / // % ** ~
    kAnd,
    kOr,
    kCompare,      // items[0] ops[0] items[1] ops[1] items[2] ...
    kConditional,  // items[1] if items[0] else items[2] (items[2] may be null)
  };
  Kind kind;
  int line = 0;
  Value value;
  std::string name;  // Name, attribute, filter, test, or binary operator.
  bool negated = false;
  std::vector<ExprPtr> items;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<std::string> ops;  // Comparison operators: == != < > <= >= in notin.
};

struct Node;
using NodePtr = std::unique_ptr<Node>;
using NodeList = std::vector<NodePtr>;

struct Node {
  enum class Kind {
    kText,      // text
    kOutput,    // {{ expr }}
    kIf,        // conditions[i] -> bodies[i]; else_body
    kFor,       // for targets in expr [if filter]: body; else_body
    kSet,       // set targets = expr  (targets "ns.attr" assigns a namespace attribute)
    kSetBlock,  // set targets[0] %} body {% endset
    kMacro,     // macro name(params = defaults) body
    kBreak,
    kContinue,
    kGeneration,  // transformers' {% generation %} body {% endgeneration %}: body in its own scope
  };
  Kind kind;
  int line = 0;
  std::string text;
  ExprPtr expr;
  ExprPtr filter;
  std::vector<std::string> targets;
  std::vector<ExprPtr> conditions;
  std::vector<NodeList> bodies;
  NodeList body;
  NodeList else_body;
  std::vector<ExprPtr>
      defaults;  // Macro parameter defaults (null where none), parallel to targets.
};

}  // namespace quantd::chat_template

#endif  // QUANTD_WORKER_CHAT_TEMPLATE_SRC_AST_H_
