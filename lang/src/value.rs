//! Runtime values. Each carries the [`Span`] of the text that produced it, so that errors found
//! later (by the schema, in another file, inside a function body) point at the right place.

use std::rc::Rc;

use indexmap::IndexMap;

use crate::span::Span;
use crate::spec::ImageSpec;
use crate::syntax::{Expr, Ident};

/// How deeply lists and records may nest inside each other. Keeps every recursive walk over values
/// (comparison, dropping) far from the stack limit.
pub(crate) const MAX_VALUE_DEPTH: usize = 200;

#[derive(Debug, Clone)]
pub(crate) struct Value {
    pub kind: V,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub(crate) enum V {
    Null,
    Bool(bool),
    Int(i64),
    Str(Rc<str>),
    List(Rc<List>),
    Record(Rc<Record>),
    Func(Rc<Func>),
    /// An image declared earlier (`images.NAME`), already validated.
    Image(Rc<ImageSpec>),
}

#[derive(Debug, Clone, Default)]
pub(crate) struct List {
    pub items: Vec<Value>,
    /// 1 + the deepest nested list/record.
    pub depth: usize,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Record {
    pub fields: IndexMap<String, Field>,
    pub depth: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct Field {
    /// Where the key was written (or the block label / block kind that made it).
    pub key_span: Span,
    pub value: Value,
}

/// A function defined by `let NAME(params) = body`.
#[derive(Debug)]
pub(crate) struct Func {
    pub name: Ident,
    pub params: Vec<Ident>,
    pub body: Rc<Expr>,
    /// The scope at the definition (the function itself is added at each call, for recursion).
    pub env: Env,
}

impl Value {
    pub fn new(kind: V, span: Span) -> Value {
        Value { kind, span }
    }

    /// "a string", "an integer", … for messages.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            V::Null => "null",
            V::Bool(_) => "a boolean",
            V::Int(_) => "an integer",
            V::Str(_) => "a string",
            V::List(_) => "a list",
            V::Record(_) => "a record",
            V::Func(_) => "a function",
            V::Image(_) => "an image",
        }
    }

    pub fn depth(&self) -> usize {
        match &self.kind {
            V::List(l) => l.depth,
            V::Record(r) => r.depth,
            _ => 0,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            V::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn list(items: Vec<Value>, span: Span) -> Value {
        let depth = 1 + items.iter().map(Value::depth).max().unwrap_or(0);
        Value::new(V::List(Rc::new(List { items, depth })), span)
    }

    pub fn record(fields: IndexMap<String, Field>, span: Span) -> Value {
        let depth = 1 + fields.values().map(|f| f.value.depth()).max().unwrap_or(0);
        Value::new(V::Record(Rc::new(Record { fields, depth })), span)
    }

    /// Structural equality. `Err` carries the span of a function, which cannot be compared.
    pub fn equals(&self, other: &Value) -> Result<bool, Span> {
        Ok(match (&self.kind, &other.kind) {
            (V::Func(_), _) => return Err(self.span),
            (_, V::Func(_)) => return Err(other.span),
            (V::Null, V::Null) => true,
            (V::Bool(a), V::Bool(b)) => a == b,
            (V::Int(a), V::Int(b)) => a == b,
            (V::Str(a), V::Str(b)) => a == b,
            (V::List(a), V::List(b)) => {
                if a.items.len() != b.items.len() {
                    return Ok(false);
                }
                for (x, y) in a.items.iter().zip(&b.items) {
                    if !x.equals(y)? {
                        return Ok(false);
                    }
                }
                true
            }
            (V::Record(a), V::Record(b)) => {
                if a.fields.len() != b.fields.len() {
                    return Ok(false);
                }
                for (key, x) in &a.fields {
                    match b.fields.get(key) {
                        Some(y) if x.value.equals(&y.value)? => {}
                        _ => return Ok(false),
                    }
                }
                true
            }
            (V::Image(a), V::Image(b)) => a.name == b.name && a.declared_in == b.declared_in,
            _ => false,
        })
    }
}

/// A lexical scope: a persistent linked list of bindings (innermost first).
#[derive(Debug, Clone, Default)]
pub(crate) struct Env(Option<Rc<EnvNode>>);

#[derive(Debug)]
pub(crate) struct EnvNode {
    name: String,
    value: Value,
    parent: Env,
}

impl Env {
    pub fn bind(&self, name: impl Into<String>, value: Value) -> Env {
        Env(Some(Rc::new(EnvNode {
            name: name.into(),
            value,
            parent: self.clone(),
        })))
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        let mut node = self.0.as_deref();
        while let Some(n) = node {
            if n.name == name {
                return Some(&n.value);
            }
            node = n.parent.0.as_deref();
        }
        None
    }

    /// Every name in scope (for suggestions).
    pub fn names(&self) -> Vec<&str> {
        let mut out = Vec::new();
        let mut node = self.0.as_deref();
        while let Some(n) = node {
            out.push(n.name.as_str());
            node = n.parent.0.as_deref();
        }
        out
    }
}

impl Drop for Env {
    /// Unlinks the chain iteratively: a file with thousands of `let`s must not overflow the stack.
    fn drop(&mut self) {
        let mut next = self.0.take();
        while let Some(rc) = next {
            match Rc::try_unwrap(rc) {
                Ok(mut node) => next = node.parent.0.take(),
                Err(_) => break,
            }
        }
    }
}
