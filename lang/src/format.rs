//! The formatter (`himg fmt`): one canonical layout for a syntax tree, comments included.
//!
//! Rules:
//! - 2-space indentation; one statement per line; blank lines between statements, entries and list
//!   items are kept but collapsed to one, and dropped at the start of a file or block.
//! - A record, list or argument list stays on one line (`{ a = 1, b = 2 }`, `[1, 2]`, `f(a, b)`) when
//!   it was written on one line, holds no comment, and fits in 100 columns; otherwise it gets one
//!   entry per line: records without commas, lists and arguments with a trailing comma.
//! - Single spaces around `=`, `+`, `//`, `==`, `!=`, after commas, inside `{ … }`; none inside
//!   `[…]` and `(…)`.
//! - Literals are kept as written (`0o755`, escapes); `"""` strings are re-indented to two spaces
//!   past their line, which does not change their value.
//! - Comments stay on their line (`x = 1  # why`, with two spaces) or before their item; a comment
//!   inside an expression moves before the entry that contains it.

use crate::lexer::Comment;
use crate::strings::{Seg, is_blank, split_lines};
use crate::syntax::*;

/// Line width that single-line containers must fit in.
pub(crate) const WIDTH: usize = 100;

pub(crate) fn format_file(file: &File) -> String {
    let p = Printer;
    let mut out = String::new();
    for (i, item) in file.stmts.iter().enumerate() {
        p.item_head(&mut out, &item.trivia, 0, i > 0);
        let text = p.stmt(&item.node);
        out.push_str(&text);
        p.trailing(&mut out, &item.trivia);
        out.push('\n');
    }
    p.dangling(&mut out, &file.dangling, 0, !file.stmts.is_empty());
    out
}

struct Printer;

fn spaces(n: usize) -> String {
    " ".repeat(n)
}

fn width(s: &str) -> usize {
    s.chars().count()
}

/// The column after printing `s` starting at `col`.
fn col_after(col: usize, s: &str) -> usize {
    match s.rfind('\n') {
        Some(i) => width(&s[i + 1..]),
        None => col + width(s),
    }
}

fn has_comments<T>(d: &Delimited<T>) -> bool {
    d.open_comment.is_some()
        || !d.dangling.is_empty()
        || d.items
            .iter()
            .any(|i| !i.trivia.leading.is_empty() || i.trivia.trailing.is_some())
}

impl Printer {
    /// Blank line, leading comments and indentation before an item.
    fn item_head(&self, out: &mut String, trivia: &Trivia, indent: usize, not_first: bool) {
        if not_first && trivia.blank_before {
            out.push('\n');
        }
        for (j, comment) in trivia.leading.iter().enumerate() {
            if j > 0 && comment.blank_before {
                out.push('\n');
            }
            out.push_str(&spaces(indent));
            out.push_str(&comment.text);
            out.push('\n');
        }
        if trivia.blank_after_leading && !trivia.leading.is_empty() {
            out.push('\n');
        }
        out.push_str(&spaces(indent));
    }

    fn trailing(&self, out: &mut String, trivia: &Trivia) {
        if let Some(comment) = &trivia.trailing {
            out.push_str("  ");
            out.push_str(&comment.text);
        }
    }

    fn dangling(&self, out: &mut String, comments: &[Comment], indent: usize, after_items: bool) {
        for (j, comment) in comments.iter().enumerate() {
            if comment.blank_before && (j > 0 || after_items) {
                out.push('\n');
            }
            out.push_str(&spaces(indent));
            out.push_str(&comment.text);
            out.push('\n');
        }
    }

    fn stmt(&self, stmt: &Stmt) -> String {
        match stmt {
            Stmt::Let(binding) => self.binding(binding, 0, 0),
            Stmt::Decl {
                kind, name, body, ..
            } => {
                let mut out = format!("{} ", kind.keyword());
                let col = out.len();
                out.push_str(&self.expr(name, 0, col));
                match &**body {
                    DeclBody::Block(record) => {
                        out.push(' ');
                        let col = col_after(0, &out);
                        out.push_str(&self.record(record, 0, col));
                    }
                    DeclBody::Expr(expr) => {
                        out.push_str(" = ");
                        let col = col_after(0, &out);
                        out.push_str(&self.expr(expr, 0, col));
                    }
                }
                out
            }
        }
    }

    fn binding(&self, binding: &Binding, indent: usize, col: usize) -> String {
        let mut out = format!("let {}", binding.name.name);
        if let Some(params) = &binding.params {
            let names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
            out.push('(');
            out.push_str(&names.join(", "));
            out.push(')');
        }
        out.push_str(" = ");
        let value_col = col_after(col, &out);
        out.push_str(&self.expr(&binding.value, indent, value_col));
        out
    }

    /// An expression starting at column `col` on a line indented by `indent`.
    fn expr(&self, expr: &Expr, indent: usize, col: usize) -> String {
        match &expr.kind {
            ExprKind::Null => "null".into(),
            ExprKind::Bool(b) => if *b { "true" } else { "false" }.into(),
            ExprKind::Int(_, raw) => raw.clone(),
            ExprKind::Str(lit) => self.string(lit, indent, col),
            ExprKind::List(list) => self.delimited(list, "[", "]", indent, col),
            ExprKind::Record(record) => self.record(record, indent, col),
            ExprKind::Var(ident) => ident.name.clone(),
            ExprKind::Field { target, field } => {
                let mut out = self.expr(target, indent, col);
                out.push('.');
                out.push_str(&field.raw);
                out
            }
            ExprKind::Call { func, args } => {
                let mut out = self.expr(func, indent, col);
                let args_col = col_after(col, &out);
                out.push_str(&self.delimited(args, "(", ")", indent, args_col));
                out
            }
            ExprKind::Binary(b) => {
                let mut out = self.expr(&b.lhs, indent, col);
                out.push(' ');
                out.push_str(b.op.symbol());
                out.push(' ');
                let rhs_col = col_after(col, &out);
                out.push_str(&self.expr(&b.rhs, indent, rhs_col));
                out
            }
            ExprKind::If {
                cond,
                then,
                otherwise,
            } => {
                let mut out = String::from("if ");
                out.push_str(&self.expr(cond, indent, col + 3));
                out.push_str(" then ");
                let c = col_after(col, &out);
                out.push_str(&self.expr(then, indent, c));
                out.push_str(" else ");
                let c = col_after(col, &out);
                out.push_str(&self.expr(otherwise, indent, c));
                out
            }
            ExprKind::LetIn { binding, body } => {
                let mut out = self.binding(binding, indent, col);
                out.push_str(" in ");
                let c = col_after(col, &out);
                out.push_str(&self.expr(body, indent, c));
                out
            }
            ExprKind::Import(lit) => {
                let mut out = String::from("import ");
                out.push_str(&self.string(lit, indent, col + 7));
                out
            }
            ExprKind::Paren(inner) => {
                let mut out = String::from("(");
                out.push_str(&self.expr(inner, indent, col + 1));
                out.push(')');
                out
            }
        }
    }

    fn string(&self, lit: &StrLit, indent: usize, col: usize) -> String {
        let render = |segs: &[Seg], strip: &str| {
            let mut out = String::new();
            for (j, seg) in segs.iter().enumerate() {
                match seg {
                    Seg::Text(t) if j == 0 => out.push_str(t.strip_prefix(strip).unwrap_or(t)),
                    Seg::Text(t) => out.push_str(t),
                    Seg::Interp(i) => {
                        out.push_str("${");
                        if let Some(e) = lit.interps.get(*i) {
                            out.push_str(&self.expr(e, indent, col));
                        }
                        out.push('}');
                    }
                }
            }
            out
        };
        if !lit.triple {
            return format!("\"{}\"", render(&lit.raw, ""));
        }
        let info = split_lines(&lit.raw);
        if info.lines.len() < 2 {
            return format!("\"\"\"{}\"\"\"", render(&lit.raw, ""));
        }
        let inner = spaces(indent + 2);
        let last = info.lines.len() - 1;
        let mut out = String::from("\"\"\"");
        if !info.first_dropped {
            out.push_str(&render(&info.lines[0], ""));
        }
        for (i, line) in info.lines.iter().enumerate().skip(1) {
            out.push('\n');
            if i == last && info.last_blank {
                out.push_str(&inner);
                out.push_str("\"\"\"");
                return out;
            }
            if !is_blank(line) {
                out.push_str(&inner);
                out.push_str(&render(line, &info.indent));
            }
        }
        out.push_str("\"\"\"");
        out
    }

    /// One-line form of an expression, if it has one (no comments, nothing written over several lines).
    fn flat(&self, expr: &Expr) -> Option<String> {
        let text = match &expr.kind {
            ExprKind::List(list) => self.flat_delimited(list, "[", "]")?,
            ExprKind::Record(record) => self.flat_record(record)?,
            _ => self.expr(expr, 0, 0),
        };
        (!text.contains('\n')).then_some(text)
    }

    fn flat_delimited(&self, d: &Delimited<Expr>, open: &str, close: &str) -> Option<String> {
        if d.multiline || has_comments(d) {
            return None;
        }
        let items: Option<Vec<String>> = d.items.iter().map(|i| self.flat(&i.node)).collect();
        Some(format!("{open}{}{close}", items?.join(", ")))
    }

    fn flat_record(&self, record: &Record) -> Option<String> {
        if record.items.is_empty() && !has_comments(record) {
            return Some("{}".into());
        }
        if record.multiline || has_comments(record) {
            return None;
        }
        let mut entries = Vec::new();
        for item in &record.items {
            let text = match &item.node {
                Entry::Field { key, value } => format!("{} = {}", self.key(key), self.flat(value)?),
                Entry::Block { kind, label, body } => {
                    let mut text = kind.name.clone();
                    if let Some(label) = label {
                        text.push(' ');
                        text.push_str(&self.flat(label)?);
                    }
                    text.push(' ');
                    text.push_str(&self.flat_record(body)?);
                    text
                }
            };
            entries.push(text);
        }
        Some(format!("{{ {} }}", entries.join(", ")))
    }

    fn key(&self, key: &Key) -> String {
        match key {
            Key::Ident(ident) => ident.name.clone(),
            Key::Str(lit) => self.string(lit, 0, 0),
        }
    }

    fn delimited(
        &self,
        d: &Delimited<Expr>,
        open: &str,
        close: &str,
        indent: usize,
        col: usize,
    ) -> String {
        if let Some(flat) = self.flat_delimited(d, open, close)
            && col + width(&flat) <= WIDTH
        {
            return flat;
        }
        let inner = indent + 2;
        let mut out = String::from(open);
        if let Some(comment) = &d.open_comment {
            out.push_str("  ");
            out.push_str(&comment.text);
        }
        out.push('\n');
        for (i, item) in d.items.iter().enumerate() {
            self.item_head(&mut out, &item.trivia, inner, i > 0);
            out.push_str(&self.expr(&item.node, inner, inner));
            out.push(',');
            self.trailing(&mut out, &item.trivia);
            out.push('\n');
        }
        self.dangling(&mut out, &d.dangling, inner, !d.items.is_empty());
        out.push_str(&spaces(indent));
        out.push_str(close);
        out
    }

    fn record(&self, record: &Record, indent: usize, col: usize) -> String {
        if let Some(flat) = self.flat_record(record)
            && col + width(&flat) <= WIDTH
        {
            return flat;
        }
        let inner = indent + 2;
        let mut out = String::from("{");
        if let Some(comment) = &record.open_comment {
            out.push_str("  ");
            out.push_str(&comment.text);
        }
        out.push('\n');
        for (i, item) in record.items.iter().enumerate() {
            self.item_head(&mut out, &item.trivia, inner, i > 0);
            out.push_str(&self.entry(&item.node, inner));
            self.trailing(&mut out, &item.trivia);
            out.push('\n');
        }
        self.dangling(&mut out, &record.dangling, inner, !record.items.is_empty());
        out.push_str(&spaces(indent));
        out.push('}');
        out
    }

    fn entry(&self, entry: &Entry, indent: usize) -> String {
        match entry {
            Entry::Field { key, value } => {
                let mut out = self.key(key);
                out.push_str(" = ");
                let col = col_after(indent, &out);
                out.push_str(&self.expr(value, indent, col));
                out
            }
            Entry::Block { kind, label, body } => {
                let mut out = kind.name.clone();
                if let Some(label) = label {
                    out.push(' ');
                    let col = col_after(indent, &out);
                    out.push_str(&self.expr(label, indent, col));
                }
                out.push(' ');
                let col = col_after(indent, &out);
                out.push_str(&self.record(body, indent, col));
                out
            }
        }
    }
}
