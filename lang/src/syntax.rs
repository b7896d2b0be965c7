//! The syntax tree: what the parser produces and the evaluator and formatter consume. Every node has
//! a [`Span`]; items of files, records, lists and argument lists keep their comments ([`Trivia`]).

use std::rc::Rc;

use crate::lexer::Comment;
use crate::span::Span;
use crate::strings::Seg;

/// Words that cannot name a variable, a parameter or a `let`.
pub(crate) const KEYWORDS: &[&str] = &[
    "let", "in", "image", "build", "import", "if", "then", "else", "true", "false", "null",
];

pub(crate) fn is_keyword(word: &str) -> bool {
    KEYWORDS.contains(&word)
}

/// Comments and blank lines around one item.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Trivia {
    /// Comments on the lines before the item (plus any comment found inside it, which the formatter
    /// moves here).
    pub leading: Vec<Comment>,
    /// A comment after the item on its last line.
    pub trailing: Option<Comment>,
    /// A blank line before the item (or before its first leading comment).
    pub blank_before: bool,
    /// A blank line between the leading comments and the item.
    pub blank_after_leading: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Item<T> {
    pub node: T,
    pub trivia: Trivia,
}

#[derive(Debug, Clone)]
pub(crate) struct File {
    pub stmts: Vec<Item<Stmt>>,
    /// Comments after the last statement.
    pub dangling: Vec<Comment>,
}

#[derive(Debug, Clone)]
pub(crate) enum Stmt {
    Let(Binding),
    /// `image NAME …` or `build NAME …`.
    Decl {
        kind: DeclKind,
        name: Expr,
        body: Box<DeclBody>,
        span: Span,
    },
}

/// What a top-level declaration declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum DeclKind {
    Image,
    Build,
}

impl DeclKind {
    /// The keyword that starts the statement.
    pub fn keyword(self) -> &'static str {
        match self {
            DeclKind::Image => "image",
            DeclKind::Build => "build",
        }
    }
}

/// `let NAME = value` or `let NAME(a, b) = value`.
#[derive(Debug, Clone)]
pub(crate) struct Binding {
    pub name: Ident,
    pub params: Option<Vec<Ident>>,
    pub value: Rc<Expr>,
}

#[derive(Debug, Clone)]
pub(crate) enum DeclBody {
    /// `image NAME { … }` (or `build`)
    Block(Record),
    /// `image NAME = expr` (or `build`)
    Expr(Expr),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ident {
    pub name: String,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub(crate) struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Merge,
    Eq,
    NotEq,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Merge => "//",
            BinOp::Eq => "==",
            BinOp::NotEq => "!=",
        }
    }
}

/// Expression forms. Large parts are boxed so that an [`Expr`] stays small: the parser and the
/// evaluator recurse through functions holding several of them, and their stack frames (large in
/// unoptimised builds) bound how deep input may nest.
#[derive(Debug, Clone)]
pub(crate) enum ExprKind {
    Null,
    Bool(bool),
    /// The value and the literal as written (`0o755`), which the formatter keeps.
    Int(i64, String),
    Str(Box<StrLit>),
    List(Box<Delimited<Expr>>),
    Record(Box<Record>),
    Var(Box<Ident>),
    Field {
        target: Box<Expr>,
        field: Box<FieldName>,
    },
    Call {
        func: Box<Expr>,
        args: Box<Delimited<Expr>>,
    },
    Binary(Box<Binary>),
    If {
        cond: Box<Expr>,
        then: Box<Expr>,
        otherwise: Box<Expr>,
    },
    LetIn {
        binding: Box<Binding>,
        body: Box<Expr>,
    },
    Import(Box<StrLit>),
    Paren(Box<Expr>),
}

/// `lhs op rhs`
#[derive(Debug, Clone)]
pub(crate) struct Binary {
    pub op: BinOp,
    pub op_span: Span,
    pub lhs: Expr,
    pub rhs: Expr,
}

/// The name after `.`: `a.b` or `a."b-c"`.
#[derive(Debug, Clone)]
pub(crate) struct FieldName {
    pub name: String,
    /// As written (`b` or `"b-c"`).
    pub raw: String,
    pub span: Span,
}

/// A bracketed, comma-separated sequence (`[…]`, call arguments) or a record body (`{…}`).
#[derive(Debug, Clone)]
pub(crate) struct Delimited<T> {
    pub items: Vec<Item<T>>,
    /// A comment on the line of the opening bracket.
    pub open_comment: Option<Comment>,
    /// Comments before the closing bracket.
    pub dangling: Vec<Comment>,
    /// The brackets were on different lines.
    pub multiline: bool,
    pub span: Span,
}

pub(crate) type Record = Delimited<Entry>;

#[derive(Debug, Clone)]
pub(crate) enum Entry {
    /// `key = value`
    Field { key: Key, value: Expr },
    /// `kind "label" { body }` or `kind { body }`
    Block {
        kind: Ident,
        label: Option<Expr>,
        body: Record,
    },
}

#[derive(Debug, Clone)]
pub(crate) enum Key {
    Ident(Ident),
    Str(StrLit),
}

/// A string literal: `"…"` or `"""…"""`.
#[derive(Debug, Clone)]
pub(crate) struct StrLit {
    pub triple: bool,
    /// The text as written, split around interpolations (for the formatter).
    pub raw: Vec<Seg>,
    /// Decoded text (escapes applied, `"""` indentation removed), same interpolation indices.
    pub cooked: Vec<Seg>,
    pub interps: Vec<Expr>,
    pub span: Span,
}

impl StrLit {
    /// The text when there is no interpolation.
    pub fn plain(&self) -> Option<String> {
        let mut out = String::new();
        for seg in &self.cooked {
            match seg {
                Seg::Text(t) => out.push_str(t),
                Seg::Interp(_) => return None,
            }
        }
        Some(out)
    }
}
#[cfg(test)]
mod tests {
    /// Deep nesting costs stack per level in the parser, evaluator and formatter: keep nodes small.
    #[test]
    fn expressions_stay_small() {
        assert!(std::mem::size_of::<super::Expr>() <= 64);
    }
}
