//! Parser: tokens → [`crate::syntax`] tree. Hand-written recursive descent with a nesting limit, so
//! any input gives a tree or one precise diagnostic (never a stack overflow).
//!
//! Unlike the lexer it is not built on nom: its state (comments waiting for the item they belong to,
//! the nesting depth) and its "expected …, found …" messages would have to be threaded through
//! combinators over a custom token input, for no gain in clarity.
//!
//! Grammar (EBNF, `{}` = repetition, `[]` = option; the book has the annotated version):
//! ```text
//! file     = { statement } ;
//! statement= binding | ( "image" | "build" ) expr ( record | "=" expr ) ;
//! binding  = "let" NAME [ "(" [ NAME { "," NAME } [","] ] ")" ] "=" expr ;
//! expr     = "if" expr "then" expr "else" expr | binding "in" expr | compare ;
//! compare  = merge [ ( "==" | "!=" ) merge ] ;
//! merge    = sum { "//" sum } ;
//! sum      = postfix { "+" postfix } ;
//! postfix  = primary { "." ( NAME | STRING ) | "(" [ expr { "," expr } [","] ] ")" } ;
//! primary  = INT | STRING | "true" | "false" | "null" | NAME | list | record
//!          | "import" STRING | "(" expr ")" | "if" … | "let" … ;
//! list     = "[" [ expr { "," expr } [","] ] "]" ;
//! record   = "{" { entry [","] } "}" ;
//! entry    = ( NAME | STRING ) "=" expr | NAME [ expr ] record ;
//! ```

use std::rc::Rc;

use crate::codes;
use crate::diagnostic::{DResult, Diag};
use crate::lexer::{Comment, Tok, Token, lex};
use crate::span::{FileId, Span};
use crate::strings::{Seg, dedent, unescape};
use crate::suggest::did_you_mean;
use crate::syntax::*;

/// How deeply expressions may nest: each bracket, block, interpolation, `if`/`let` and each link
/// of an operator or `.`/call chain is one level.
pub(crate) const MAX_DEPTH: usize = 100;

/// Parses one file.
pub(crate) fn parse(src: &str, file: FileId) -> DResult<File> {
    let toks = lex(src, file)?;
    let mut parser = Parser {
        toks,
        pos: 0,
        src,
        pending: Vec::new(),
        depth: 0,
    };
    parser.file()
}

struct Parser<'s> {
    toks: Vec<Token>,
    pos: usize,
    src: &'s str,
    /// Comments of consumed tokens, not yet given to an item.
    pending: Vec<Comment>,
    depth: usize,
}

struct ItemStart {
    leading: Vec<Comment>,
    blank_before: bool,
    blank_after_leading: bool,
    mark: usize,
}

impl Parser<'_> {
    fn tok(&self) -> &Token {
        // The token list always ends with `Eof`, and `bump` never moves past it.
        &self.toks[self.pos.min(self.toks.len().saturating_sub(1))]
    }

    fn kind(&self) -> Tok {
        self.tok().kind
    }

    fn peek_kind(&self, n: usize) -> Tok {
        self.toks.get(self.pos + n).map_or(Tok::Eof, |t| t.kind)
    }

    fn span(&self) -> Span {
        self.tok().span
    }

    fn at(&self, kind: Tok) -> bool {
        self.kind() == kind
    }

    fn text(&self, span: Span) -> &str {
        self.src.get(span.start..span.end).unwrap_or("")
    }

    fn word(&self) -> Option<&str> {
        (self.kind() == Tok::Word).then(|| self.text(self.span()))
    }

    fn at_word(&self, word: &str) -> bool {
        self.word() == Some(word)
    }

    /// Consumes the current token, keeping its comments for the enclosing item.
    fn bump(&mut self) -> Span {
        let span = self.span();
        if self.pos < self.toks.len() {
            let comments = std::mem::take(&mut self.toks[self.pos].comments);
            self.pending.extend(comments);
        }
        if self.kind() != Tok::Eof {
            self.pos += 1;
        }
        span
    }

    fn found(&self) -> String {
        match self.kind() {
            Tok::Word => format!("`{}`", self.text(self.span())),
            Tok::Int(_) => format!("`{}`", self.text(self.span())),
            other => other.describe().to_owned(),
        }
    }

    fn unexpected(&self, expected: &str) -> Diag {
        Diag::new(
            codes::UNEXPECTED_TOKEN,
            self.span(),
            format!("expected {expected}, found {}", self.found()),
        )
        .label(format!("expected {expected}"))
    }

    fn expect(&mut self, kind: Tok, expected: &str) -> DResult<Span> {
        if self.at(kind) {
            Ok(self.bump())
        } else {
            cold(|| self.unexpected(expected))
        }
    }

    /// Consumes the keyword `word`; anything else is an error that says `help`.
    fn expect_word(&mut self, word: &str, help: &str) -> DResult<Span> {
        if self.at_word(word) {
            Ok(self.bump())
        } else {
            cold(|| self.unexpected(&format!("`{word}`")).help(help))
        }
    }

    fn enter(&mut self) -> DResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return cold(|| {
                Diag::new(codes::TOO_DEEP, self.span(), "expression nested too deeply")
                    .label(format!("more than {MAX_DEPTH} levels deep here"))
                    .help("split the expression with `let` bindings")
            });
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    fn begin_item(&mut self) -> ItemStart {
        let blank_tok = self.tok().blank_before;
        let leading = if self.pos < self.toks.len() {
            std::mem::take(&mut self.toks[self.pos].comments)
        } else {
            Vec::new()
        };
        let blank_before = leading.first().map_or(blank_tok, |c| c.blank_before);
        ItemStart {
            blank_after_leading: !leading.is_empty() && blank_tok,
            leading,
            blank_before,
            mark: self.pending.len(),
        }
    }

    fn end_item<T>(&mut self, start: ItemStart, node: T) -> Item<T> {
        let ItemStart {
            mut leading,
            blank_before,
            blank_after_leading,
            mark,
        } = start;
        leading.extend(self.pending.drain(mark.min(self.pending.len())..));
        let trailing = self.take_same_line_comment();
        Item {
            node,
            trivia: Trivia {
                leading,
                trailing,
                blank_before,
                blank_after_leading,
            },
        }
    }

    /// Takes a comment on the same line as the previous token, if the current token has one.
    fn take_same_line_comment(&mut self) -> Option<Comment> {
        let tok = self.toks.get_mut(self.pos)?;
        if tok.comments.first().is_some_and(|c| !c.own_line) {
            Some(tok.comments.remove(0))
        } else {
            None
        }
    }

    fn take_comments(&mut self) -> Vec<Comment> {
        match self.toks.get_mut(self.pos) {
            Some(tok) => std::mem::take(&mut tok.comments),
            None => Vec::new(),
        }
    }

    // ---------------------------------------------------------------- statements

    fn file(&mut self) -> DResult<File> {
        let mut stmts = Vec::new();
        loop {
            if self.at(Tok::Eof) {
                let mut dangling = std::mem::take(&mut self.pending);
                dangling.extend(self.take_comments());
                return Ok(File { stmts, dangling });
            }
            let start = self.begin_item();
            let stmt = match self.word() {
                Some("let") => {
                    let binding = self.binding()?;
                    if self.at_word("in") {
                        return Diag::new(
                            codes::UNEXPECTED_TOKEN,
                            self.span(),
                            "unexpected `in` after a top-level `let`",
                        )
                        .label("not needed here")
                        .help("a top-level `let` is a statement and needs no `in`; `let … in …` is an expression")
                        .err();
                    }
                    Stmt::Let(binding)
                }
                Some("image") => self.decl(DeclKind::Image)?,
                Some("build") => self.decl(DeclKind::Build)?,
                Some(other) => {
                    let other = other.to_owned();
                    return cold(|| {
                        self.unexpected("`let`, `image` or `build`")
                            .maybe_help(did_you_mean(&other, ["let", "image", "build"]))
                    });
                }
                None => return self.unexpected("`let`, `image` or `build`").err(),
            };
            let item = self.end_item(start, stmt);
            stmts.push(item);
        }
    }

    /// `image NAME …` or `build NAME …`.
    fn decl(&mut self, kind: DeclKind) -> DResult<Stmt> {
        let keyword = self.bump();
        let word = kind.keyword();
        if self.at(Tok::LBrace) || self.at(Tok::Eq) {
            return cold(|| {
                self.unexpected(&format!("the {word} name"))
                    .help(format!("write `{word} \"name\" {{ … }}`"))
            });
        }
        let name = self.expr()?;
        let body = if self.at(Tok::LBrace) {
            DeclBody::Block(self.record()?)
        } else if self.at(Tok::Eq) {
            self.bump();
            DeclBody::Expr(self.expr()?)
        } else {
            return cold(|| {
                self.unexpected(&format!("`{{` or `=` after the {word} name"))
                    .help(format!(
                        "write `{word} \"name\" {{ … }}` or `{word} \"name\" = template(…)`"
                    ))
            });
        };
        let end = match &body {
            DeclBody::Block(r) => r.span,
            DeclBody::Expr(e) => e.span,
        };
        Ok(Stmt::Decl {
            kind,
            name,
            body: Box::new(body),
            span: keyword.to(end),
        })
    }

    fn name(&mut self, what: &str) -> DResult<Ident> {
        match self.word() {
            Some(word) if is_keyword(word) => cold(|| {
                Diag::new(
                    codes::KEYWORD_AS_NAME,
                    self.span(),
                    format!("`{word}` is a keyword and cannot be used as {what}"),
                )
                .label("keyword")
                .help(format!("choose another name, e.g. `{word}_`"))
            }),
            Some(word) => {
                let name = word.to_owned();
                let span = self.bump();
                Ok(Ident { name, span })
            }
            None => cold(|| self.unexpected(what)),
        }
    }

    fn binding(&mut self) -> DResult<Binding> {
        self.bump(); // `let`
        let name = self.name("a name")?;
        let params = if self.at(Tok::LParen) {
            let open = self.bump();
            let mut params: Vec<Ident> = Vec::new();
            // Name → index in `params`: a duplicate is found in O(1), however many there are.
            let mut seen: std::collections::HashMap<String, usize> =
                std::collections::HashMap::new();
            loop {
                if self.at(Tok::RParen) {
                    self.bump();
                    break;
                }
                if self.at(Tok::Eof) {
                    return cold(|| unclosed(open, "(", ")"));
                }
                let param = self.name("a parameter name")?;
                if let Some(first) = seen.get(&param.name).and_then(|i| params.get(*i)) {
                    return cold(|| {
                        Diag::new(
                            codes::DUPLICATE_KEY,
                            param.span,
                            format!("parameter `{}` appears twice", param.name),
                        )
                        .label("second parameter with this name")
                        .secondary(first.span, "first one here")
                    });
                }
                seen.insert(param.name.clone(), params.len());
                params.push(param);
                if self.at(Tok::Comma) {
                    self.bump();
                } else if !self.at(Tok::RParen) {
                    return cold(|| self.unexpected("`,` or `)`"));
                }
            }
            Some(params)
        } else {
            None
        };
        if !self.at(Tok::Eq) {
            let help = if self.at(Tok::EqEq) {
                "a binding uses a single `=`"
            } else {
                "write `let name = value`"
            };
            return cold(|| self.unexpected("`=`").help(help));
        }
        self.bump();
        let value = self.expr()?;
        Ok(Binding {
            name,
            params,
            value: Rc::new(value),
        })
    }

    // ---------------------------------------------------------------- expressions

    fn expr(&mut self) -> DResult<Expr> {
        self.enter()?;
        let expr = match self.word() {
            Some("if") => self.if_expr()?,
            Some("let") => self.let_in()?,
            _ => self.operators()?,
        };
        self.leave();
        Ok(expr)
    }

    fn if_expr(&mut self) -> DResult<Expr> {
        let start = self.bump();
        let cond = self.expr()?;
        self.expect_word("then", "write `if condition then a else b`")?;
        let then = self.expr()?;
        self.expect_word("else", "every `if` needs an `else` branch")?;
        let otherwise = self.expr()?;
        let span = start.to(otherwise.span);
        Ok(Expr {
            kind: ExprKind::If {
                cond: Box::new(cond),
                then: Box::new(then),
                otherwise: Box::new(otherwise),
            },
            span,
        })
    }

    fn let_in(&mut self) -> DResult<Expr> {
        let start = self.span();
        let binding = self.binding()?;
        self.expect_word(
            "in",
            "inside an expression write `let name = value in body`",
        )?;
        let body = self.expr()?;
        let span = start.to(body.span);
        Ok(Expr {
            kind: ExprKind::LetIn {
                binding: Box::new(binding),
                body: Box::new(body),
            },
            span,
        })
    }

    /// Operators, by precedence climbing without recursion: `==`/`!=` (loosest, not chainable),
    /// then `//`, then `+` (tightest); `//` and `+` are left-associative.
    fn operators(&mut self) -> DResult<Expr> {
        fn precedence(op: BinOp) -> u8 {
            match op {
                BinOp::Eq | BinOp::NotEq => 1,
                BinOp::Merge => 2,
                BinOp::Add => 3,
            }
        }
        fn reduce(operands: &mut Vec<Expr>, ops: &mut Vec<(BinOp, Span)>) {
            if let (Some((op, op_span)), Some(rhs), Some(lhs)) =
                (ops.pop(), operands.pop(), operands.pop())
            {
                operands.push(binary(op, op_span, lhs, rhs));
            }
        }
        let saved = self.depth;
        let mut operands = vec![self.postfix()?];
        let mut ops: Vec<(BinOp, Span)> = Vec::new();
        let mut compared = false;
        loop {
            let op = match self.kind() {
                Tok::EqEq => BinOp::Eq,
                Tok::NotEq => BinOp::NotEq,
                Tok::Merge => BinOp::Merge,
                Tok::Plus => BinOp::Add,
                _ => break,
            };
            if precedence(op) == 1 {
                if compared {
                    return cold(|| {
                        Diag::new(
                            codes::UNEXPECTED_TOKEN,
                            self.span(),
                            "comparisons cannot be chained",
                        )
                        .label("second comparison")
                        .help("add parentheses: `(a == b) == c`")
                    });
                }
                compared = true;
            }
            self.enter()?;
            while ops
                .last()
                .is_some_and(|(top, _)| precedence(*top) >= precedence(op))
            {
                reduce(&mut operands, &mut ops);
            }
            let op_span = self.bump();
            ops.push((op, op_span));
            operands.push(self.postfix()?);
        }
        while !ops.is_empty() {
            reduce(&mut operands, &mut ops);
        }
        self.depth = saved;
        match operands.pop() {
            Some(expr) => Ok(expr),
            None => cold(|| self.unexpected("an expression")),
        }
    }

    fn postfix(&mut self) -> DResult<Expr> {
        let saved = self.depth;
        let mut expr = self.primary()?;
        loop {
            expr = match self.kind() {
                Tok::Dot => self.field_suffix(expr)?,
                Tok::LParen => self.call_suffix(expr)?,
                _ => break,
            };
        }
        self.depth = saved;
        Ok(expr)
    }

    /// `.name` after `target`.
    #[inline(never)]
    fn field_suffix(&mut self, target: Expr) -> DResult<Expr> {
        self.enter()?;
        self.bump();
        let field = self.field_name()?;
        let span = target.span.to(field.span);
        Ok(Expr {
            kind: ExprKind::Field {
                target: Box::new(target),
                field: Box::new(field),
            },
            span,
        })
    }

    /// `(args)` after `func`.
    #[inline(never)]
    fn call_suffix(&mut self, func: Expr) -> DResult<Expr> {
        self.enter()?;
        let args = self.delimited(Tok::RParen, "(", ")")?;
        let span = func.span.to(args.span);
        Ok(Expr {
            kind: ExprKind::Call {
                func: Box::new(func),
                args: Box::new(args),
            },
            span,
        })
    }

    fn field_name(&mut self) -> DResult<FieldName> {
        match self.kind() {
            Tok::Word => {
                let span = self.bump();
                let name = self.text(span).to_owned();
                Ok(FieldName {
                    raw: name.clone(),
                    name,
                    span,
                })
            }
            Tok::StrOpen { triple: false } => {
                let lit = self.string()?;
                match lit.plain() {
                    Some(name) => Ok(FieldName {
                        raw: self.text(lit.span).to_owned(),
                        name,
                        span: lit.span,
                    }),
                    None => cold(|| {
                        Diag::new(
                            codes::UNEXPECTED_TOKEN,
                            lit.span,
                            "field names after `.` cannot be interpolated",
                        )
                        .label("interpolated")
                        .help("merge records with `//` or write the field name out")
                    }),
                }
            }
            _ => self
                .unexpected("a field name after `.`")
                .help("write `record.field` or `record.\"field-name\"`")
                .err(),
        }
    }

    fn primary(&mut self) -> DResult<Expr> {
        match self.kind() {
            Tok::Int(value) => {
                let span = self.bump();
                Ok(Expr {
                    kind: ExprKind::Int(value, self.text(span).to_owned()),
                    span,
                })
            }
            Tok::StrOpen { .. } => {
                let lit = self.string()?;
                Ok(Expr {
                    span: lit.span,
                    kind: ExprKind::Str(Box::new(lit)),
                })
            }
            Tok::LBracket => {
                let list = self.delimited(Tok::RBracket, "[", "]")?;
                Ok(Expr {
                    span: list.span,
                    kind: ExprKind::List(Box::new(list)),
                })
            }
            Tok::LBrace => {
                let record = self.record()?;
                Ok(Expr {
                    span: record.span,
                    kind: ExprKind::Record(Box::new(record)),
                })
            }
            Tok::LParen => self.paren(),
            Tok::Word => self.word_expr(),
            _ => cold(|| self.unexpected("an expression")),
        }
    }

    #[inline(never)]
    fn paren(&mut self) -> DResult<Expr> {
        let open = self.bump();
        let inner = self.expr()?;
        if self.at(Tok::Eof) {
            return cold(|| unclosed(open, "(", ")"));
        }
        let close = self.expect(Tok::RParen, "`)`")?;
        Ok(Expr {
            kind: ExprKind::Paren(Box::new(inner)),
            span: open.to(close),
        })
    }

    /// A primary expression starting with a word: literal keywords, `if`, `let`, `import`, a name.
    #[inline(never)]
    fn word_expr(&mut self) -> DResult<Expr> {
        let span = self.span();
        let kind = match self.text(span) {
            "true" => ExprKind::Bool(true),
            "false" => ExprKind::Bool(false),
            "null" => ExprKind::Null,
            "if" | "let" => return self.expr(),
            "import" => return self.import(),
            word @ ("then" | "else" | "in") => {
                return cold(|| {
                    Diag::new(
                        codes::UNEXPECTED_TOKEN,
                        span,
                        format!("expected an expression, found keyword `{word}`"),
                    )
                    .label("expected an expression")
                });
            }
            "image" => {
                return cold(|| {
                    Diag::new(codes::KEYWORD_AS_NAME, span, "`image` is a keyword and cannot be used as a value")
                        .label("keyword")
                        .help("images declared earlier in this file are values in `images`: `images.NAME`")
                });
            }
            "build" => {
                return cold(|| {
                    Diag::new(codes::KEYWORD_AS_NAME, span, "`build` is a keyword and cannot be used as a value")
                        .label("keyword")
                        .help("builds declared earlier in this file are values in `builds`: `builds.NAME`")
                });
            }
            word => ExprKind::Var(Box::new(Ident {
                name: word.to_owned(),
                span,
            })),
        };
        self.bump();
        Ok(Expr { kind, span })
    }

    #[inline(never)]
    fn import(&mut self) -> DResult<Expr> {
        let start = self.bump();
        if !matches!(self.kind(), Tok::StrOpen { .. }) {
            return cold(|| {
                self.unexpected("a path string after `import`")
                    .help("write `import \"lib/common.himg\"`")
            });
        }
        let path = self.string()?;
        if path.plain().is_none() {
            return cold(|| {
                Diag::new(
                    codes::DYNAMIC_IMPORT,
                    path.span,
                    "import paths cannot be interpolated",
                )
                .label("interpolated path")
                .help("write the path out: imports are resolved before evaluation, like a `use`")
            });
        }
        let span = start.to(path.span);
        Ok(Expr {
            kind: ExprKind::Import(Box::new(path)),
            span,
        })
    }

    fn string(&mut self) -> DResult<StrLit> {
        let open = self.span();
        let triple = matches!(self.kind(), Tok::StrOpen { triple: true });
        self.bump();
        let mut raw: Vec<Seg> = Vec::new();
        let mut interps: Vec<Expr> = Vec::new();
        let close = loop {
            match self.kind() {
                Tok::StrText => {
                    let span = self.bump();
                    raw.push(Seg::Text(self.text(span).to_owned()));
                }
                Tok::InterpOpen => {
                    let interp_open = self.bump();
                    let expr = self.expr()?;
                    if !self.at(Tok::InterpClose) {
                        return cold(|| {
                            self.unexpected("`}` to end the interpolation")
                                .secondary(interp_open, "interpolation starts here")
                        });
                    }
                    self.bump();
                    raw.push(Seg::Interp(interps.len()));
                    interps.push(expr);
                }
                Tok::StrClose => break self.bump(),
                _ => return cold(|| self.unexpected("the end of the string")),
            }
        };
        let decoded = if triple { dedent(&raw) } else { raw.clone() };
        let cooked = decoded
            .into_iter()
            .map(|seg| match seg {
                Seg::Text(t) => Seg::Text(unescape(&t)),
                other => other,
            })
            .collect();
        Ok(StrLit {
            triple,
            raw,
            cooked,
            interps,
            span: open.to(close),
        })
    }

    fn take_open_comment(&mut self) -> Option<Comment> {
        self.take_same_line_comment()
    }

    /// `[a, b]` or `(a, b)`: the opening token is current.
    fn delimited(
        &mut self,
        close: Tok,
        open_text: &str,
        close_text: &str,
    ) -> DResult<Delimited<Expr>> {
        let open = self.bump();
        let open_comment = self.take_open_comment();
        let mut items = Vec::new();
        loop {
            if self.at(close) {
                break;
            }
            if self.at(Tok::Eof) {
                return cold(|| unclosed(open, open_text, close_text));
            }
            let start = self.begin_item();
            let expr = self.expr()?;
            let comma = self.at(Tok::Comma);
            if comma {
                self.bump();
            }
            let item = self.end_item(start, expr);
            items.push(item);
            if !comma && !self.at(close) {
                if self.at(Tok::Eof) {
                    return cold(|| unclosed(open, open_text, close_text));
                }
                let what = if close == Tok::RParen {
                    "arguments"
                } else {
                    "list items"
                };
                return cold(|| {
                    self.unexpected(&format!("`,` or `{close_text}`"))
                        .help(format!("separate {what} with `,`"))
                });
            }
        }
        let dangling = self.take_comments();
        let close_span = self.bump();
        let span = open.to(close_span);
        Ok(Delimited {
            items,
            open_comment,
            dangling,
            multiline: self.text(span).contains('\n'),
            span,
        })
    }

    /// `{ entries }`: the `{` is current.
    fn record(&mut self) -> DResult<Record> {
        let open = self.bump();
        let open_comment = self.take_open_comment();
        let mut items = Vec::new();
        loop {
            if self.at(Tok::RBrace) {
                break;
            }
            if self.at(Tok::Eof) {
                return cold(|| unclosed(open, "{", "}"));
            }
            let start = self.begin_item();
            let entry = self.entry()?;
            if self.at(Tok::Comma) {
                self.bump();
            }
            let item = self.end_item(start, entry);
            items.push(item);
        }
        let dangling = self.take_comments();
        let close = self.bump();
        let span = open.to(close);
        Ok(Delimited {
            items,
            open_comment,
            dangling,
            multiline: self.text(span).contains('\n'),
            span,
        })
    }

    fn entry(&mut self) -> DResult<Entry> {
        match self.kind() {
            Tok::Word => {
                let span = self.span();
                let word = self.text(span).to_owned();
                match self.peek_kind(1) {
                    Tok::Eq => {
                        self.bump();
                        self.bump();
                        let value = self.expr()?;
                        Ok(Entry::Field {
                            key: Key::Ident(Ident { name: word, span }),
                            value,
                        })
                    }
                    Tok::LBrace => {
                        self.bump();
                        self.enter()?;
                        let body = self.record()?;
                        self.leave();
                        Ok(Entry::Block {
                            kind: Ident { name: word, span },
                            label: None,
                            body,
                        })
                    }
                    Tok::Eof | Tok::RBrace | Tok::Comma | Tok::EqEq => {
                        self.bump();
                        cold(|| {
                            self.unexpected(&format!("`=` after `{word}`"))
                                .help(format!("write `{word} = value`"))
                        })
                    }
                    _ => {
                        self.bump();
                        let label = self.expr()?;
                        if !self.at(Tok::LBrace) {
                            return cold(|| {
                                self.unexpected(&format!("`{{` to open the `{word}` block"))
                                    .secondary(span.to(label.span), "block header")
                                    .help(format!("to set a field, write `{word} = …`"))
                            });
                        }
                        self.enter()?;
                        let body = self.record()?;
                        self.leave();
                        Ok(Entry::Block {
                            kind: Ident { name: word, span },
                            label: Some(label),
                            body,
                        })
                    }
                }
            }
            Tok::StrOpen { .. } => {
                let key = self.string()?;
                if !self.at(Tok::Eq) {
                    return cold(|| {
                        self.unexpected("`=` after the quoted key")
                            .help("write `\"key\" = value`")
                    });
                }
                self.bump();
                let value = self.expr()?;
                Ok(Entry::Field {
                    key: Key::Str(key),
                    value,
                })
            }
            _ => cold(|| {
                self.unexpected("a field name")
                    .help("fields are written `name = value`, blocks `kind \"label\" { … }`")
            }),
        }
    }
}

/// Builds an error out of line: diagnostics are built from several temporaries, which would otherwise
/// bloat the stack frames of the recursive parsing functions (and so the stack per nesting level).
#[cold]
#[inline(never)]
fn cold<T>(make: impl FnOnce() -> Diag) -> DResult<T> {
    Err(Box::new(make()))
}

fn binary(op: BinOp, op_span: Span, lhs: Expr, rhs: Expr) -> Expr {
    let span = lhs.span.to(rhs.span);
    Expr {
        kind: ExprKind::Binary(Box::new(Binary {
            op,
            op_span,
            lhs,
            rhs,
        })),
        span,
    }
}

fn unclosed(open: Span, open_text: &str, close_text: &str) -> Diag {
    Diag::new(
        codes::UNCLOSED_DELIMITER,
        open,
        format!("unclosed `{open_text}`"),
    )
    .label(format!("this `{open_text}` is never closed"))
    .help(format!("add the missing `{close_text}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(src: &str) -> File {
        match parse(src, 0) {
            Ok(f) => f,
            Err(e) => panic!("{}: {} ({:?})", e.code, e.message, e.span),
        }
    }

    fn err(src: &str) -> &'static str {
        match parse(src, 0) {
            Ok(_) => panic!("expected an error for {src:?}"),
            Err(e) => e.code,
        }
    }

    #[test]
    fn statements_and_blocks() {
        let file = ok(
            "let a = 1\nlet f(x, y,) = x + y\nimage \"x\" {\n  user \"app\" { uid = 1 }\n  a = [1, 2,]\n  b = f(1, 2).c\n}\nimage \"y\" = f(1) // { c = 1 }\n",
        );
        assert_eq!(file.stmts.len(), 4);
    }

    #[test]
    fn build_statements_parse_like_images() {
        let file = ok(
            "build \"b\" {\n  source builds.a { path = \"x\" }\n  outputs = [\"y\"]\n}\nbuild \"c\" = f(1)\n",
        );
        let kinds: Vec<Option<DeclKind>> = file
            .stmts
            .iter()
            .map(|s| match &s.node {
                Stmt::Decl { kind, .. } => Some(*kind),
                Stmt::Let(_) => None,
            })
            .collect();
        assert_eq!(kinds, [Some(DeclKind::Build), Some(DeclKind::Build)]);
        assert_eq!(err("build {}"), codes::UNEXPECTED_TOKEN);
        assert_eq!(err("build \"x\" []"), codes::UNEXPECTED_TOKEN);
        assert_eq!(err("let build = 1"), codes::KEYWORD_AS_NAME);
        assert_eq!(err("let x = build"), codes::KEYWORD_AS_NAME);
    }

    #[test]
    fn syntax_errors() {
        assert_eq!(err("image \"x\" {"), codes::UNCLOSED_DELIMITER);
        assert_eq!(err("let x = [1 2]"), codes::UNEXPECTED_TOKEN);
        assert_eq!(err("let then = 1"), codes::KEYWORD_AS_NAME);
        assert_eq!(err("imgae \"x\" {}"), codes::UNEXPECTED_TOKEN);
        assert_eq!(err("let x = a == b == c"), codes::UNEXPECTED_TOKEN);
        assert_eq!(err("let x = import \"${a}.himg\""), codes::DYNAMIC_IMPORT);
        assert_eq!(err("let x = if a then b"), codes::UNEXPECTED_TOKEN);
        assert_eq!(err("let f(a, a) = 1"), codes::DUPLICATE_KEY);
    }

    #[test]
    fn deep_nesting_is_a_diagnostic() {
        let src = format!("let x = {}", "[".repeat(10_000));
        assert_eq!(err(&src), codes::TOO_DEEP);
        let src = format!("let x = 1{}", " + 1".repeat(10_000));
        assert_eq!(err(&src), codes::TOO_DEEP);
        let src = format!("let x = a{}", ".b".repeat(10_000));
        assert_eq!(err(&src), codes::TOO_DEEP);
        let src = format!("let x = {}x{}", "\"${".repeat(10_000), "}\"".repeat(10_000));
        assert_eq!(err(&src), codes::TOO_DEEP);
    }

    #[test]
    fn comments_attach_to_items() {
        let file = ok(
            "# head\nlet a = 1 # one\n\n# two\nlet b = { # open\n  x = 1 # x\n  # end\n}\n# tail\n",
        );
        assert_eq!(file.stmts[0].trivia.leading.len(), 1);
        assert!(file.stmts[0].trivia.trailing.is_some());
        assert!(file.stmts[1].trivia.blank_before);
        assert_eq!(file.dangling.len(), 1);
        let Stmt::Let(b) = &file.stmts[1].node else {
            panic!()
        };
        let ExprKind::Record(r) = &b.value.kind else {
            panic!()
        };
        assert!(r.open_comment.is_some());
        assert!(r.items[0].trivia.trailing.is_some());
        assert_eq!(r.dangling.len(), 1);
        assert!(r.multiline);
    }
}
