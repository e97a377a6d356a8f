#include "parser.h"

#include <algorithm>
#include <cstdlib>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "errors.h"
#include "filters.h"

namespace quantd::chat_template {
namespace {

using T = Token::Type;

std::string Describe(const Token& t) {
  switch (t.type) {
    case T::kEof:
      return "end of template";
    case T::kBlockEnd:
      return "'%}'";
    case T::kVarEnd:
      return "'}}'";
    case T::kString:
      return "string literal";
    default:
      return absl::StrCat("'", t.value, "'");
  }
}

class Parser {
 public:
  explicit Parser(const std::vector<Token>& tokens) : toks_(tokens) {}

  absl::StatusOr<NodeList> Run() {
    std::string end_tag;
    QCT_ASSIGN(body, ParseBody({}, &end_tag, 0, ""));
    return body;
  }

 private:
  using SubParser = absl::StatusOr<ExprPtr> (Parser::*)();

  // Real templates nest a few levels; the limit keeps hostile input from exhausting the stack.
  static constexpr int kMaxDepth = 100;
  class DepthGuard {
   public:
    explicit DepthGuard(Parser* p) : p_(p) { ++p_->depth_; }
    ~DepthGuard() { --p_->depth_; }
    DepthGuard(const DepthGuard&) = delete;
    DepthGuard& operator=(const DepthGuard&) = delete;
    bool too_deep() const { return p_->depth_ > kMaxDepth; }

   private:
    Parser* p_;
  };
  absl::Status TooDeep() const {
    return SyntaxError(Cur().line,
                       absl::StrCat("template nested more than ", kMaxDepth, " levels deep"));
  }

  const Token& Cur() const { return toks_[pos_]; }
  const Token& Peek(size_t n = 1) const { return toks_[std::min(pos_ + n, toks_.size() - 1)]; }
  bool IsOp(const char* op) const { return Cur().type == T::kOperator && Cur().value == op; }
  bool IsName(const char* name) const { return Cur().type == T::kName && Cur().value == name; }
  void Advance() {
    if (pos_ + 1 < toks_.size()) ++pos_;
  }
  bool SkipOp(const char* op) {
    if (!IsOp(op)) return false;
    Advance();
    return true;
  }
  bool SkipName(const char* name) {
    if (!IsName(name)) return false;
    Advance();
    return true;
  }
  absl::Status Unexpected(const std::string& expected) const {
    return SyntaxError(Cur().line, absl::StrCat("expected ", expected, ", got ", Describe(Cur())));
  }
  absl::Status ExpectOp(const char* op) {
    if (!SkipOp(op)) return Unexpected(absl::StrCat("'", op, "'"));
    return absl::OkStatus();
  }
  absl::Status ExpectBlockEnd() {
    if (Cur().type != T::kBlockEnd) return Unexpected("'%}'");
    Advance();
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> ExpectName() {
    if (Cur().type != T::kName) return Unexpected("a name");
    std::string name = Cur().value;
    Advance();
    return name;
  }

  // Parses nodes until one of `end_tags` opens a block; its name goes to *end_tag.
  absl::StatusOr<NodeList> ParseBody(const std::set<std::string>& end_tags, std::string* end_tag,
                                     int open_line, const std::string& open_tag) {
    NodeList nodes;
    while (true) {
      const Token& t = Cur();
      if (t.type == T::kEof) {
        if (end_tags.empty()) return nodes;
        return SyntaxError(open_line, absl::StrCat("unclosed '", open_tag, "' tag: missing '",
                                                   *end_tags.rbegin(), "'"));
      }
      if (t.type == T::kText) {
        auto node = std::make_unique<Node>();
        node->kind = Node::Kind::kText;
        node->line = t.line;
        node->text = t.value;
        nodes.push_back(std::move(node));
        Advance();
      } else if (t.type == T::kVarBegin) {
        auto node = std::make_unique<Node>();
        node->kind = Node::Kind::kOutput;
        node->line = t.line;
        Advance();
        QCT_ASSIGN(expr, ParseExpression());
        node->expr = std::move(expr);
        if (Cur().type != T::kVarEnd) return Unexpected("'}}'");
        Advance();
        nodes.push_back(std::move(node));
      } else if (t.type == T::kBlockBegin) {
        Advance();
        if (Cur().type != T::kName) return Unexpected("a tag name");
        std::string tag = Cur().value;
        if (end_tags.count(tag) > 0) {
          Advance();
          *end_tag = tag;
          return nodes;
        }
        QCT_ASSIGN(node, ParseStatement());
        nodes.push_back(std::move(node));
      } else {
        return SyntaxError(t.line, absl::StrCat("unexpected ", Describe(t)));
      }
    }
  }

  absl::StatusOr<NodePtr> ParseStatement() {
    DepthGuard guard(this);
    if (guard.too_deep()) return TooDeep();
    const Token& t = Cur();
    const std::string tag = t.value;
    const int line = t.line;
    Advance();
    auto node = std::make_unique<Node>();
    node->line = line;
    if (tag == "if") {
      node->kind = Node::Kind::kIf;
      while (true) {
        QCT_ASSIGN(cond, ParseExpression());
        QCT_RETURN_IF_ERROR(ExpectBlockEnd());
        std::string end;
        QCT_ASSIGN(body, ParseBody({"elif", "else", "endif"}, &end, line, "if"));
        node->conditions.push_back(std::move(cond));
        node->bodies.push_back(std::move(body));
        if (end == "elif") continue;
        if (end == "else") {
          QCT_RETURN_IF_ERROR(ExpectBlockEnd());
          QCT_ASSIGN(else_body, ParseBody({"endif"}, &end, line, "if"));
          node->else_body = std::move(else_body);
        }
        break;
      }
      QCT_RETURN_IF_ERROR(ExpectBlockEnd());
      return node;
    }
    if (tag == "for") {
      node->kind = Node::Kind::kFor;
      bool paren = SkipOp("(");
      do {
        QCT_ASSIGN(target, ExpectName());
        node->targets.push_back(target);
      } while (SkipOp(","));
      if (paren) QCT_RETURN_IF_ERROR(ExpectOp(")"));
      if (!SkipName("in")) return Unexpected("'in'");
      QCT_ASSIGN(iter, ParseOr());
      node->expr = std::move(iter);
      if (SkipName("if")) {
        QCT_ASSIGN(filter, ParseExpression());
        node->filter = std::move(filter);
      }
      if (IsName("recursive")) {
        return SyntaxError(line, "unsupported construct 'for ... recursive'");
      }
      QCT_RETURN_IF_ERROR(ExpectBlockEnd());
      std::string end;
      QCT_ASSIGN(body, ParseBody({"else", "endfor"}, &end, line, "for"));
      node->body = std::move(body);
      if (end == "else") {
        QCT_RETURN_IF_ERROR(ExpectBlockEnd());
        QCT_ASSIGN(else_body, ParseBody({"endfor"}, &end, line, "for"));
        node->else_body = std::move(else_body);
      }
      QCT_RETURN_IF_ERROR(ExpectBlockEnd());
      return node;
    }
    if (tag == "set") {
      QCT_ASSIGN(first, ExpectName());
      if (SkipOp(".")) {
        QCT_ASSIGN(attr, ExpectName());
        first += "." + attr;
      }
      node->targets.push_back(first);
      while (SkipOp(",")) {
        QCT_ASSIGN(more, ExpectName());
        node->targets.push_back(more);
      }
      if (SkipOp("=")) {
        node->kind = Node::Kind::kSet;
        QCT_ASSIGN(value, ParseTupleOrExpression());
        node->expr = std::move(value);
        QCT_RETURN_IF_ERROR(ExpectBlockEnd());
        return node;
      }
      if (node->targets.size() != 1 || first.find('.') != std::string::npos) {
        return Unexpected("'='");
      }
      node->kind = Node::Kind::kSetBlock;
      QCT_RETURN_IF_ERROR(ExpectBlockEnd());
      std::string end;
      QCT_ASSIGN(body, ParseBody({"endset"}, &end, line, "set"));
      node->body = std::move(body);
      QCT_RETURN_IF_ERROR(ExpectBlockEnd());
      return node;
    }
    if (tag == "macro") {
      node->kind = Node::Kind::kMacro;
      QCT_ASSIGN(name, ExpectName());
      node->text = name;
      QCT_RETURN_IF_ERROR(ExpectOp("("));
      while (!IsOp(")")) {
        QCT_ASSIGN(param, ExpectName());
        node->targets.push_back(param);
        ExprPtr def;
        if (SkipOp("=")) {
          QCT_ASSIGN(d, ParseExpression());
          def = std::move(d);
        }
        node->defaults.push_back(std::move(def));
        if (!SkipOp(",")) break;
      }
      QCT_RETURN_IF_ERROR(ExpectOp(")"));
      QCT_RETURN_IF_ERROR(ExpectBlockEnd());
      std::string end;
      QCT_ASSIGN(body, ParseBody({"endmacro"}, &end, line, "macro"));
      node->body = std::move(body);
      QCT_RETURN_IF_ERROR(ExpectBlockEnd());
      return node;
    }
    if (tag == "generation") {
      node->kind = Node::Kind::kGeneration;
      QCT_RETURN_IF_ERROR(ExpectBlockEnd());
      std::string end;
      QCT_ASSIGN(body, ParseBody({"endgeneration"}, &end, line, "generation"));
      node->body = std::move(body);
      QCT_RETURN_IF_ERROR(ExpectBlockEnd());
      return node;
    }
    if (tag == "break" || tag == "continue") {
      node->kind = tag == "break" ? Node::Kind::kBreak : Node::Kind::kContinue;
      QCT_RETURN_IF_ERROR(ExpectBlockEnd());
      return node;
    }
    static const std::set<std::string> kEndTags = {"elif",   "else",     "endif",        "endfor",
                                                   "endset", "endmacro", "endgeneration"};
    if (kEndTags.count(tag) > 0) {
      return SyntaxError(line, absl::StrCat("unexpected '", tag, "' tag"));
    }
    return SyntaxError(line, absl::StrCat("unsupported tag '", tag, "'"));
  }

  // `a, b` (a list) or a single expression.
  absl::StatusOr<ExprPtr> ParseTupleOrExpression() {
    int line = Cur().line;
    QCT_ASSIGN(first, ParseExpression());
    if (!IsOp(",")) return first;
    auto list = MakeExpr(Expr::Kind::kList, line);
    list->name = "tuple";
    list->items.push_back(std::move(first));
    while (SkipOp(",")) {
      if (Cur().type == T::kBlockEnd) break;
      QCT_ASSIGN(next, ParseExpression());
      list->items.push_back(std::move(next));
    }
    return list;
  }

  static ExprPtr MakeExpr(Expr::Kind kind, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line;
    return e;
  }

  absl::StatusOr<ExprPtr> ParseExpression() {
    DepthGuard guard(this);
    if (guard.too_deep()) return TooDeep();
    QCT_ASSIGN(expr, ParseOr());
    while (IsName("if")) {
      int line = Cur().line;
      Advance();
      auto cond = MakeExpr(Expr::Kind::kConditional, line);
      QCT_ASSIGN(test, ParseOr());
      cond->items.push_back(std::move(test));
      cond->items.push_back(std::move(expr));
      if (SkipName("else")) {
        QCT_ASSIGN(other, ParseExpression());
        cond->items.push_back(std::move(other));
      } else {
        cond->items.push_back(nullptr);
      }
      expr = std::move(cond);
    }
    return expr;
  }

  absl::StatusOr<ExprPtr> ParseOr() {
    return ParseLeftAssoc(Expr::Kind::kOr, T::kName, {"or"}, &Parser::ParseAnd);
  }
  absl::StatusOr<ExprPtr> ParseAnd() {
    return ParseLeftAssoc(Expr::Kind::kAnd, T::kName, {"and"}, &Parser::ParseNot);
  }

  absl::StatusOr<ExprPtr> ParseNot() {
    DepthGuard guard(this);
    if (guard.too_deep()) return TooDeep();
    if (IsName("not")) {
      auto e = MakeExpr(Expr::Kind::kNot, Cur().line);
      Advance();
      QCT_ASSIGN(operand, ParseNot());
      e->items.push_back(std::move(operand));
      return e;
    }
    return ParseCompare();
  }

  absl::StatusOr<ExprPtr> ParseCompare() {
    int line = Cur().line;
    QCT_ASSIGN(left, ParseMath1());
    ExprPtr cmp;
    while (true) {
      std::string op;
      if (Cur().type == T::kOperator &&
          (Cur().value == "==" || Cur().value == "!=" || Cur().value == "<" || Cur().value == ">" ||
           Cur().value == "<=" || Cur().value == ">=")) {
        op = Cur().value;
        Advance();
      } else if (IsName("in")) {
        op = "in";
        Advance();
      } else if (IsName("not") && Peek().type == T::kName && Peek().value == "in") {
        op = "notin";
        Advance();
        Advance();
      } else {
        break;
      }
      if (!cmp) {
        cmp = MakeExpr(Expr::Kind::kCompare, line);
        cmp->items.push_back(std::move(left));
      }
      QCT_ASSIGN(right, ParseMath1());
      cmp->ops.push_back(op);
      cmp->items.push_back(std::move(right));
    }
    return cmp ? std::move(cmp) : std::move(left);
  }

  // One precedence level of left-associative operators (`and`, `or`, `+`, ...).
  absl::StatusOr<ExprPtr> ParseLeftAssoc(Expr::Kind kind, T token_type,
                                         const std::vector<std::string>& ops, SubParser next) {
    QCT_ASSIGN(left, (this->*next)());
    while (Cur().type == token_type &&
           std::find(ops.begin(), ops.end(), Cur().value) != ops.end()) {
      auto e = MakeExpr(kind, Cur().line);
      e->name = Cur().value;
      Advance();
      QCT_ASSIGN(right, (this->*next)());
      e->items.push_back(std::move(left));
      e->items.push_back(std::move(right));
      left = std::move(e);
    }
    return left;
  }
  absl::StatusOr<ExprPtr> ParseMath1() {
    return ParseLeftAssoc(Expr::Kind::kBinary, T::kOperator, {"+", "-"}, &Parser::ParseConcat);
  }
  absl::StatusOr<ExprPtr> ParseConcat() {
    return ParseLeftAssoc(Expr::Kind::kBinary, T::kOperator, {"~"}, &Parser::ParseMath2);
  }
  absl::StatusOr<ExprPtr> ParseMath2() {
    return ParseLeftAssoc(Expr::Kind::kBinary, T::kOperator, {"*", "/", "//", "%"},
                          &Parser::ParsePow);
  }
  absl::StatusOr<ExprPtr> ParsePow() {
    return ParseLeftAssoc(Expr::Kind::kBinary, T::kOperator, {"**"}, &Parser::ParseUnaryFiltered);
  }
  absl::StatusOr<ExprPtr> ParseUnaryFiltered() { return ParseUnary(true); }

  absl::StatusOr<ExprPtr> ParseUnary(bool with_filter) {
    DepthGuard guard(this);
    if (guard.too_deep()) return TooDeep();
    ExprPtr node;
    if (IsOp("-") || IsOp("+")) {
      auto e = MakeExpr(IsOp("-") ? Expr::Kind::kNegate : Expr::Kind::kPlus, Cur().line);
      Advance();
      QCT_ASSIGN(operand, ParseUnary(false));
      e->items.push_back(std::move(operand));
      node = std::move(e);
    } else {
      QCT_ASSIGN(primary, ParsePrimary());
      node = std::move(primary);
    }
    QCT_ASSIGN(post, ParsePostfix(std::move(node)));
    if (!with_filter) return post;
    return ParseFilterExpr(std::move(post));
  }

  absl::StatusOr<ExprPtr> ParsePrimary() {
    const Token& t = Cur();
    int line = t.line;
    if (t.type == T::kName) {
      std::string name = t.value;
      Advance();
      auto lit = MakeExpr(Expr::Kind::kLiteral, line);
      if (name == "true" || name == "True")
        lit->value = Value::Bool(true);
      else if (name == "false" || name == "False")
        lit->value = Value::Bool(false);
      else if (name == "none" || name == "None")
        lit->value = Value::None();
      else {
        auto e = MakeExpr(Expr::Kind::kName, line);
        e->name = name;
        return e;
      }
      return lit;
    }
    if (t.type == T::kString) {
      std::string s;
      while (Cur().type == T::kString) {  // Adjacent literals concatenate.
        s += Cur().value;
        Advance();
      }
      auto e = MakeExpr(Expr::Kind::kLiteral, line);
      e->value = Value::String(std::move(s));
      return e;
    }
    if (t.type == T::kInt || t.type == T::kFloat) {
      auto e = MakeExpr(Expr::Kind::kLiteral, line);
      e->value = t.type == T::kInt ? Value::Int(std::strtoll(t.value.c_str(), nullptr, 10))
                                   : Value::Float(std::strtod(t.value.c_str(), nullptr));
      Advance();
      return e;
    }
    if (IsOp("(")) {
      Advance();
      if (SkipOp(")")) {
        auto empty = MakeExpr(Expr::Kind::kList, line);
        empty->name = "tuple";
        return empty;
      }
      QCT_ASSIGN(first, ParseExpression());
      if (SkipOp(")")) return first;
      auto list = MakeExpr(Expr::Kind::kList, line);
      list->name = "tuple";
      list->items.push_back(std::move(first));
      while (SkipOp(",")) {
        if (IsOp(")")) break;
        QCT_ASSIGN(next, ParseExpression());
        list->items.push_back(std::move(next));
      }
      QCT_RETURN_IF_ERROR(ExpectOp(")"));
      return list;
    }
    if (IsOp("[")) {
      Advance();
      auto list = MakeExpr(Expr::Kind::kList, line);
      while (!IsOp("]")) {
        QCT_ASSIGN(item, ParseExpression());
        list->items.push_back(std::move(item));
        if (!SkipOp(",")) break;
      }
      QCT_RETURN_IF_ERROR(ExpectOp("]"));
      return list;
    }
    if (IsOp("{")) {
      Advance();
      auto dict = MakeExpr(Expr::Kind::kDict, line);
      while (!IsOp("}")) {
        QCT_ASSIGN(key, ParseExpression());
        QCT_RETURN_IF_ERROR(ExpectOp(":"));
        QCT_ASSIGN(value, ParseExpression());
        dict->items.push_back(std::move(key));
        dict->items.push_back(std::move(value));
        if (!SkipOp(",")) break;
      }
      QCT_RETURN_IF_ERROR(ExpectOp("}"));
      return dict;
    }
    return SyntaxError(line, absl::StrCat("unexpected ", Describe(t), " in expression"));
  }

  absl::StatusOr<ExprPtr> ParsePostfix(ExprPtr node) {
    while (true) {
      int line = Cur().line;
      if (IsOp(".")) {
        Advance();
        if (Cur().type == T::kInt) {
          auto e = MakeExpr(Expr::Kind::kGetItem, line);
          auto idx = MakeExpr(Expr::Kind::kLiteral, line);
          idx->value = Value::Int(std::strtoll(Cur().value.c_str(), nullptr, 10));
          Advance();
          e->items.push_back(std::move(node));
          e->items.push_back(std::move(idx));
          node = std::move(e);
          continue;
        }
        QCT_ASSIGN(attr, ExpectName());
        auto e = MakeExpr(Expr::Kind::kGetAttr, line);
        e->name = attr;
        e->items.push_back(std::move(node));
        node = std::move(e);
      } else if (IsOp("[")) {
        Advance();
        QCT_ASSIGN(sub, ParseSubscript(std::move(node), line));
        node = std::move(sub);
      } else if (IsOp("(")) {
        QCT_ASSIGN(call, ParseCall(std::move(node), line));
        node = std::move(call);
      } else {
        return node;
      }
    }
  }

  absl::StatusOr<ExprPtr> ParseSubscript(ExprPtr target, int line) {
    ExprPtr parts[3];
    int part = 0;
    bool is_slice = false;
    while (true) {
      if (IsOp(":")) {
        is_slice = true;
        if (++part > 2) return Unexpected("']'");
        Advance();
        continue;
      }
      if (IsOp("]")) break;
      if (parts[part]) return Unexpected("':' or ']'");
      QCT_ASSIGN(e, ParseExpression());
      parts[part] = std::move(e);
    }
    Advance();
    auto e = MakeExpr(is_slice ? Expr::Kind::kSlice : Expr::Kind::kGetItem, line);
    e->items.push_back(std::move(target));
    if (!is_slice) {
      if (!parts[0]) return SyntaxError(line, "empty subscript '[]'");
      e->items.push_back(std::move(parts[0]));
    } else {
      for (auto& p : parts) e->items.push_back(std::move(p));
    }
    return e;
  }

  // Parses "( args )" into e->items (after any existing ones) and e->kwargs.
  absl::Status ParseArgs(Expr* e) {
    QCT_RETURN_IF_ERROR(ExpectOp("("));
    while (!IsOp(")")) {
      if (IsOp("*") || IsOp("**")) {
        return SyntaxError(Cur().line, "unsupported construct '*args' / '**kwargs' in a call");
      }
      if (Cur().type == T::kName && Peek().type == T::kOperator && Peek().value == "=") {
        std::string key = Cur().value;
        Advance();
        Advance();
        QCT_ASSIGN(value, ParseExpression());
        e->kwargs.emplace_back(key, std::move(value));
      } else {
        if (!e->kwargs.empty()) {
          return SyntaxError(Cur().line, "positional argument follows keyword argument");
        }
        QCT_ASSIGN(value, ParseExpression());
        e->items.push_back(std::move(value));
      }
      if (!SkipOp(",")) break;
    }
    return ExpectOp(")");
  }

  absl::StatusOr<ExprPtr> ParseCall(ExprPtr callee, int line) {
    auto e = MakeExpr(Expr::Kind::kCall, line);
    e->items.push_back(std::move(callee));
    QCT_RETURN_IF_ERROR(ParseArgs(e.get()));
    return e;
  }

  absl::StatusOr<ExprPtr> ParseFilterExpr(ExprPtr node) {
    while (true) {
      int line = Cur().line;
      if (IsOp("|")) {
        Advance();
        QCT_ASSIGN(name, ExpectName());
        if (!IsKnownFilter(name)) {
          return SyntaxError(line, absl::StrCat("unsupported filter '", name, "'"));
        }
        auto e = MakeExpr(Expr::Kind::kFilter, line);
        e->name = name;
        e->items.push_back(std::move(node));
        if (IsOp("(")) QCT_RETURN_IF_ERROR(ParseArgs(e.get()));
        node = std::move(e);
      } else if (IsName("is")) {
        Advance();
        auto e = MakeExpr(Expr::Kind::kTest, line);
        e->negated = SkipName("not");
        QCT_ASSIGN(name, ExpectName());
        if (!IsKnownTest(name)) {
          return SyntaxError(line, absl::StrCat("unsupported test '", name, "'"));
        }
        e->name = name;
        e->items.push_back(std::move(node));
        const Token& t = Cur();
        if (IsOp("(")) {
          QCT_RETURN_IF_ERROR(ParseArgs(e.get()));
        } else if ((t.type == T::kName || t.type == T::kString || t.type == T::kInt ||
                    t.type == T::kFloat || IsOp("[") || IsOp("{")) &&
                   !IsName("else") && !IsName("or") && !IsName("and")) {
          QCT_ASSIGN(arg, ParsePrimary());
          QCT_ASSIGN(arg_post, ParsePostfix(std::move(arg)));
          e->items.push_back(std::move(arg_post));
        }
        node = std::move(e);
      } else if (IsOp("(")) {
        QCT_ASSIGN(call, ParseCall(std::move(node), line));
        node = std::move(call);
      } else {
        return node;
      }
    }
  }

  const std::vector<Token>& toks_;
  size_t pos_ = 0;
  int depth_ = 0;
};

}  // namespace

absl::StatusOr<NodeList> ParseTemplate(const std::vector<Token>& tokens) {
  Parser parser(tokens);
  return parser.Run();
}

}  // namespace quantd::chat_template
