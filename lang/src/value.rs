//! Runtime values. Each carries the [`Span`] of the text that produced it, so that errors found
//! later (by the schema, in another file, inside a function body) point at the right place.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use indexmap::IndexMap;

use crate::span::{FileId, Span};
use crate::spec::{BuildSpec, ImageSpec};
use crate::syntax::{DeclKind, Expr, Ident};

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
    /// A build declared earlier (`builds.NAME`), already validated.
    Build(Rc<BuildSpec>),
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
            V::Build(_) => "a build",
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

    /// Structural equality, spending one of `budget` per value compared (and one per
    /// [`crate::limits::BYTES_PER_STEP`] bytes of strings), so that comparing values that share
    /// structure (`[s, s]` nested forty times) ends.
    pub fn equals(&self, other: &Value, budget: &mut u64) -> Result<bool, Incomparable> {
        let cost = match (&self.kind, &other.kind) {
            (V::Str(a), V::Str(b)) => {
                1 + (a.len().min(b.len()) as u64) / crate::limits::BYTES_PER_STEP
            }
            _ => 1,
        };
        *budget = budget.checked_sub(cost).ok_or(Incomparable::OverBudget)?;
        Ok(match (&self.kind, &other.kind) {
            (V::Func(_), _) => return Err(Incomparable::Function(self.span)),
            (_, V::Func(_)) => return Err(Incomparable::Function(other.span)),
            (V::Null, V::Null) => true,
            (V::Bool(a), V::Bool(b)) => a == b,
            (V::Int(a), V::Int(b)) => a == b,
            (V::Str(a), V::Str(b)) => a == b,
            (V::List(a), V::List(b)) => {
                if a.items.len() != b.items.len() {
                    return Ok(false);
                }
                for (x, y) in a.items.iter().zip(&b.items) {
                    if !x.equals(y, budget)? {
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
                        Some(y) if x.value.equals(&y.value, budget)? => {}
                        _ => return Ok(false),
                    }
                }
                true
            }
            (V::Image(a), V::Image(b)) => a.name == b.name && a.declared_in == b.declared_in,
            (V::Build(a), V::Build(b)) => a.name == b.name && a.declared_in == b.declared_in,
            _ => false,
        })
    }
}

/// Why `==` gave no answer.
#[derive(Debug)]
pub(crate) enum Incomparable {
    /// A function (at this span) was compared.
    Function(Span),
    /// The comparison used up its step budget.
    OverBudget,
}

/// A lexical scope: local bindings (function parameters, `let … in`) as a persistent linked list,
/// innermost first, in front of a view of one file's top level.
///
/// The top level is shared, not copied: a file's `let`s and images go into one [`TopScope`] as they
/// are evaluated, and each scope sees the part declared before the statement it belongs to
/// (`visible`). So declaring the n-th image or `let` costs O(1), not a copy of the n-1 before it,
/// and a name is found in O(1) whatever the number of top-level statements.
#[derive(Debug, Clone, Default)]
pub(crate) struct Env {
    locals: Locals,
    top: Option<TopView>,
}

#[derive(Debug, Clone, Default)]
struct Locals(Option<Rc<EnvNode>>);

#[derive(Debug)]
struct EnvNode {
    name: String,
    value: Value,
    parent: Locals,
}

/// The top-level statements of one file, filled in as they are evaluated.
#[derive(Debug)]
pub(crate) struct TopScope {
    /// The file, for the span of the `images` record.
    file: FileId,
    /// Each top-level `let` (names are unique) with the index of its statement.
    lets: RefCell<HashMap<String, (usize, Value)>>,
    /// Each image in declaration order, with the index of its statement.
    images: RefCell<IndexMap<String, (usize, Field)>>,
    /// Each build in declaration order, with the index of its statement.
    builds: RefCell<IndexMap<String, (usize, Field)>>,
}

impl TopScope {
    pub fn new(file: FileId) -> TopScope {
        TopScope {
            file,
            lets: RefCell::default(),
            images: RefCell::default(),
            builds: RefCell::default(),
        }
    }

    pub fn add_let(&self, statement: usize, name: &str, value: Value) {
        self.lets
            .borrow_mut()
            .insert(name.to_owned(), (statement, value));
    }

    /// Adds an image or a build (`kind`) declared by statement `statement`.
    pub fn add_decl(&self, kind: DeclKind, statement: usize, name: &str, field: Field) {
        self.decls(kind)
            .borrow_mut()
            .insert(name.to_owned(), (statement, field));
    }

    fn decls(&self, kind: DeclKind) -> &RefCell<IndexMap<String, (usize, Field)>> {
        match kind {
            DeclKind::Image => &self.images,
            DeclKind::Build => &self.builds,
        }
    }

    /// Forgets every value: functions hold scopes that hold them, so this breaks the cycles once
    /// evaluation is over.
    pub fn clear(&self) {
        let lets = std::mem::take(&mut *self.lets.borrow_mut());
        let images = std::mem::take(&mut *self.images.borrow_mut());
        let builds = std::mem::take(&mut *self.builds.borrow_mut());
        drop((lets, images, builds));
    }
}

/// What a scope sees of a file's top level: the statements before `visible`.
#[derive(Debug, Clone)]
struct TopView {
    scope: Rc<TopScope>,
    visible: usize,
}

/// The result of looking up `images.NAME` (or `builds.NAME`).
pub(crate) enum DeclLookup {
    /// `images` (or `builds`) is a local binding: read the field from this value.
    Shadowed(Value),
    /// The image (or build), if the file declared it before this point.
    Declared(Option<Value>),
}

/// The builtin record that holds the declarations of `kind`.
pub(crate) fn builtin_record(kind: DeclKind) -> &'static str {
    match kind {
        DeclKind::Image => "images",
        DeclKind::Build => "builds",
    }
}

/// The kind whose builtin record is called `name`.
pub(crate) fn builtin_kind(name: &str) -> Option<DeclKind> {
    match name {
        "images" => Some(DeclKind::Image),
        "builds" => Some(DeclKind::Build),
        _ => None,
    }
}

impl Env {
    /// The scope of statement `visible` of a file whose top level is `scope`.
    pub fn top(scope: Rc<TopScope>, visible: usize) -> Env {
        Env {
            locals: Locals::default(),
            top: Some(TopView { scope, visible }),
        }
    }

    pub fn bind(&self, name: impl Into<String>, value: Value) -> Env {
        Env {
            locals: Locals(Some(Rc::new(EnvNode {
                name: name.into(),
                value,
                parent: self.locals.clone(),
            }))),
            top: self.top.clone(),
        }
    }

    fn local(&self, name: &str) -> Option<&Value> {
        let mut node = self.locals.0.as_deref();
        while let Some(n) = node {
            if n.name == name {
                return Some(&n.value);
            }
            node = n.parent.0.as_deref();
        }
        None
    }

    /// The value of `name`. The builtins `images` and `builds` are made into a record of the
    /// declarations so far (O(declarations): [`Env::decl`] reads one without it).
    pub fn get(&self, name: &str) -> Option<Value> {
        if let Some(value) = self.local(name) {
            return Some(value.clone());
        }
        let top = self.top.as_ref()?;
        if let Some(kind) = builtin_kind(name) {
            let decls = top.scope.decls(kind).borrow();
            let fields: IndexMap<String, Field> = decls
                .iter()
                .take_while(|(_, (statement, _))| *statement < top.visible)
                .map(|(name, (_, field))| (name.clone(), field.clone()))
                .collect();
            return Some(Value::record(fields, Span::new(top.scope.file, 0, 0)));
        }
        let lets = top.scope.lets.borrow();
        match lets.get(name) {
            Some((statement, value)) if *statement < top.visible => Some(value.clone()),
            _ => None,
        }
    }

    /// How many declarations of `kind` its builtin record holds here (0 when it is shadowed or
    /// there is no top level).
    pub fn decl_count(&self, kind: DeclKind) -> usize {
        match (&self.top, self.local(builtin_record(kind))) {
            (Some(top), None) => top
                .scope
                .decls(kind)
                .borrow()
                .values()
                .take_while(|(statement, _)| *statement < top.visible)
                .count(),
            _ => 0,
        }
    }

    /// `images.NAME` or `builds.NAME`, without making the whole record.
    pub fn decl(&self, kind: DeclKind, name: &str) -> DeclLookup {
        if let Some(value) = self.local(builtin_record(kind)) {
            return DeclLookup::Shadowed(value.clone());
        }
        let found = self.top.as_ref().and_then(|top| {
            let decls = top.scope.decls(kind).borrow();
            decls
                .get(name)
                .filter(|(statement, _)| *statement < top.visible)
                .map(|(_, field)| field.value.clone())
        });
        DeclLookup::Declared(found)
    }

    /// Whether the file declares an image or build `name` before this point (for hints).
    pub fn has_decl(&self, kind: DeclKind, name: &str) -> bool {
        matches!(self.decl(kind, name), DeclLookup::Declared(Some(_)))
    }

    /// Every name in scope (for suggestions), unsorted.
    pub fn names(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut node = self.locals.0.as_deref();
        while let Some(n) = node {
            out.push(n.name.clone());
            node = n.parent.0.as_deref();
        }
        if let Some(top) = &self.top {
            out.push("images".to_owned());
            out.push("builds".to_owned());
            let lets = top.scope.lets.borrow();
            out.extend(
                lets.iter()
                    .filter(|(_, (statement, _))| *statement < top.visible)
                    .map(|(name, _)| name.clone()),
            );
        }
        out
    }
}

impl Drop for Locals {
    /// Unlinks the chain iteratively: thousands of nested bindings must not overflow the stack.
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
