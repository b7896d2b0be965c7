//! Evaluator: syntax tree → values, file by file. Strict, sequential (a name is usable after its
//! `let`), hermetic (files only through the [`SourceLoader`]), and memoised per file.

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::rc::Rc;
use std::sync::Arc;

use indexmap::IndexMap;

use crate::codes;
use crate::diagnostic::{DResult, Diag, Diagnostics, resolve_all};
use crate::limits::{
    BYTES_PER_STEP, MAX_EVAL_DEPTH, MAX_LIST_ITEMS, MAX_PARAMS, MAX_STEPS, MAX_STRING_BYTES,
    MAX_VALUE_DEPTH,
};
use crate::loader::{SourceError, SourceLoader, outside_by_dots};
use crate::parser::parse;
use crate::schema;
use crate::span::{FileId, Files, Span};
use crate::spec::{BuildSpec, Evaluated, ImageSpec, SourcePath};
use crate::strings::Seg;
use crate::suggest::did_you_mean;
use crate::syntax::*;
use crate::value::{DeclLookup, Env, Field, Func, Incomparable, TopScope, V, Value, builtin_kind};

/// Errors of one evaluation step (usually one; schema checks report all they find).
#[derive(Debug)]
pub(crate) struct Errors(pub Vec<Diag>);

impl From<Box<Diag>> for Errors {
    fn from(diag: Box<Diag>) -> Errors {
        Errors(vec![*diag])
    }
}

impl From<Diag> for Errors {
    fn from(diag: Diag) -> Errors {
        Errors(vec![diag])
    }
}

type EResult<T> = Result<T, Errors>;

/// The value of one evaluated file.
#[derive(Debug)]
struct Module {
    /// Top-level `let`s plus `images` and `builds`, as the value of `import`.
    exports: Rc<crate::value::Record>,
    images: Vec<Rc<ImageSpec>>,
    builds: Vec<Rc<BuildSpec>>,
}

pub(crate) struct Evaluator<'l> {
    loader: &'l dyn SourceLoader,
    files: Files,
    modules: HashMap<SourcePath, Rc<Module>>,
    /// Files being evaluated, outermost first, each with the `import` that led to it.
    loading: Vec<(SourcePath, Option<Span>)>,
    /// Top-level `let` names of each file, for "defined later" hints.
    top_level: HashMap<FileId, Vec<Ident>>,
    files_read: BTreeSet<SourcePath>,
    depth: usize,
    calls: Vec<Ident>,
    /// Every file's top-level scope, cleared when evaluation ends (see [`TopScope::clear`]).
    scopes: Vec<Rc<TopScope>>,
    /// Steps taken so far (see [`MAX_STEPS`]).
    steps: u64,
    /// How much each image and build embeds (see [`crate::limits::MAX_SPEC_NODES`]).
    sizes: schema::SpecSizes,
}

/// Evaluates `entry` and everything it imports. See [`crate::evaluate`].
pub(crate) fn evaluate(
    entry: &SourcePath,
    loader: &dyn SourceLoader,
) -> Result<Evaluated, Diagnostics> {
    let mut ev = Evaluator {
        loader,
        files: Files::default(),
        modules: HashMap::new(),
        loading: Vec::new(),
        top_level: HashMap::new(),
        files_read: BTreeSet::new(),
        depth: 0,
        calls: Vec::new(),
        scopes: Vec::new(),
        steps: 0,
        sizes: schema::SpecSizes::default(),
    };
    let entry = match SourcePath::normalize(entry.as_str()) {
        Ok(path) => path,
        Err(e) => {
            let id = ev.files.add(entry.clone(), Arc::from(""));
            let diag = Diag::new(codes::ABSOLUTE_IMPORT, Span::new(id, 0, 0), e.to_string())
                .label("entry file")
                .help("give the entry file relative to the loader's root");
            return Err(resolve_all(&[diag], &ev.files));
        }
    };
    let result = match ev.module(&entry, None) {
        Ok(module) => Ok(Evaluated {
            entry,
            images: module.images.iter().map(|s| (**s).clone()).collect(),
            files_read: std::mem::take(&mut ev.files_read).into_iter().collect(),
            builds: module.builds.iter().map(|b| (**b).clone()).collect(),
        }),
        Err(Errors(diags)) => Err(resolve_all(&diags, &ev.files)),
    };
    for scope in &ev.scopes {
        scope.clear();
    }
    result
}

impl Evaluator<'_> {
    fn module(&mut self, path: &SourcePath, via: Option<Span>) -> EResult<Rc<Module>> {
        if let Some(module) = self.modules.get(path) {
            return Ok(module.clone());
        }
        if let Some(pos) = self.loading.iter().position(|(p, _)| p == path) {
            return Err(self.cycle(pos, path, via).into());
        }
        let text = self.read_source(path, via)?;
        let file = self.files.add(path.clone(), text.clone());
        let ast = parse(&text, file)?;
        self.top_level.insert(
            file,
            ast.stmts
                .iter()
                .filter_map(|s| match &s.node {
                    Stmt::Let(b) => Some(b.name.clone()),
                    Stmt::Decl { .. } => None,
                })
                .collect(),
        );
        self.loading.push((path.clone(), via));
        let result = self.run_file(file, path, &ast);
        self.loading.pop();
        let module = Rc::new(result?);
        self.modules.insert(path.clone(), module.clone());
        Ok(module)
    }

    /// Reads and decodes a source file; errors point at the `import` (or at the file itself).
    fn read_source(&mut self, path: &SourcePath, via: Option<Span>) -> EResult<Arc<str>> {
        let at = |files: &mut Files| match via {
            Some(span) => span,
            None => Span::new(files.add(path.clone(), Arc::from("")), 0, 0),
        };
        let bytes = match self.loader.read(path) {
            Ok(bytes) => bytes,
            Err(SourceError::Io(e)) if e.kind() == io::ErrorKind::NotFound => {
                let span = at(&mut self.files);
                let what = if via.is_some() {
                    "imported file"
                } else {
                    "file"
                };
                return Err(Diag::new(
                    codes::IMPORT_NOT_FOUND,
                    span,
                    format!("{what} `{path}` does not exist"),
                )
                .label(format!("`{path}` not found"))
                .help("import paths are relative to the importing file's directory")
                .into());
            }
            Err(e) => {
                let span = at(&mut self.files);
                let noun = if via.is_some() { "import" } else { "file" };
                return Err(e.diagnostic(path, span, noun).into());
            }
        };
        self.files_read.insert(path.clone());
        decode(&mut self.files, path, bytes).map_err(Errors::from)
    }

    fn cycle(&self, pos: usize, path: &SourcePath, via: Option<Span>) -> Diag {
        let mut chain: Vec<String> = self.loading[pos..]
            .iter()
            .map(|(p, _)| format!("`{p}`"))
            .collect();
        chain.push(format!("`{path}`"));
        let span = via.unwrap_or(Span::new(0, 0, 0));
        let mut diag = Diag::new(
            codes::IMPORT_CYCLE,
            span,
            format!("import cycle: {}", chain.join(" -> ")),
        )
        .label(format!("`{path}` is already being evaluated"))
        .help("move what both files need into a third file that both import");
        for (p, import) in self.loading[pos + 1..].iter() {
            if let Some(import) = import {
                diag = diag.secondary(*import, format!("imports `{p}`"));
            }
        }
        diag
    }

    fn run_file(&mut self, file: FileId, path: &SourcePath, ast: &File) -> EResult<Module> {
        let empty = Span::new(file, 0, 0);
        let scope = Rc::new(TopScope::new(file));
        self.scopes.push(scope.clone());
        let mut lets: IndexMap<String, Field> = IndexMap::new();
        let mut images: IndexMap<String, Field> = IndexMap::new();
        let mut builds: IndexMap<String, Field> = IndexMap::new();
        let mut specs: Vec<Rc<ImageSpec>> = Vec::new();
        let mut build_specs: Vec<Rc<BuildSpec>> = Vec::new();
        for (statement, item) in ast.stmts.iter().enumerate() {
            let env = Env::top(scope.clone(), statement);
            match &item.node {
                Stmt::Let(binding) => {
                    let name = &binding.name;
                    if builtin_kind(&name.name).is_some() {
                        return Err(Diag::new(
                            codes::RESERVED_NAME,
                            name.span,
                            format!("`{}` is a builtin and cannot be redefined", name.name),
                        )
                        .label("reserved name")
                        .help("choose another name")
                        .into());
                    }
                    if let Some(first) = lets.get(&name.name) {
                        return Err(Diag::new(
                            codes::DUPLICATE_KEY,
                            name.span,
                            format!("`{}` is defined twice", name.name),
                        )
                        .label("second definition")
                        .secondary(first.key_span, "first defined here")
                        .help("top-level names must be unique: they are what `import` exports")
                        .into());
                    }
                    let value = self.binding_value(binding, &env)?;
                    scope.add_let(statement, &name.name, value.clone());
                    lets.insert(
                        name.name.clone(),
                        Field {
                            key_span: name.span,
                            value,
                        },
                    );
                }
                Stmt::Decl {
                    kind,
                    name,
                    body,
                    span,
                } => {
                    let declared = match kind {
                        DeclKind::Image => &images,
                        DeclKind::Build => &builds,
                    };
                    let (decl_name, name_span) = self.decl_name(*kind, name, &env, declared)?;
                    let body_value = match &**body {
                        DeclBody::Block(record) => self.record(record, &env)?,
                        DeclBody::Expr(expr) => self.eval(expr, &env)?,
                    };
                    let record = match &body_value.kind {
                        V::Record(record) => record.clone(),
                        _ => return Err(not_a_record_body(*kind, &body_value, *span).into()),
                    };
                    let cx = schema::Cx {
                        loader: self.loader,
                        files: &self.files,
                        declared_in: path,
                        sizes: &self.sizes,
                    };
                    let value = match kind {
                        DeclKind::Image => {
                            let (spec, size) =
                                schema::image(&cx, &decl_name, name_span, *span, &record)
                                    .map_err(Errors)?;
                            self.charge(size, name_span)?;
                            let spec = Rc::new(spec);
                            specs.push(spec.clone());
                            V::Image(spec)
                        }
                        DeclKind::Build => {
                            let (spec, size) =
                                schema::build(&cx, &decl_name, name_span, *span, &record)
                                    .map_err(Errors)?;
                            self.charge(size, name_span)?;
                            let spec = Rc::new(spec);
                            build_specs.push(spec.clone());
                            V::Build(spec)
                        }
                    };
                    let field = Field {
                        key_span: name_span,
                        value: Value::new(value, name_span),
                    };
                    scope.add_decl(*kind, statement, &decl_name, field.clone());
                    match kind {
                        DeclKind::Image => images.insert(decl_name, field),
                        DeclKind::Build => builds.insert(decl_name, field),
                    };
                }
            }
        }
        let mut exports = lets;
        exports.insert(
            "images".to_owned(),
            Field {
                key_span: empty,
                value: Value::record(images, empty),
            },
        );
        exports.insert(
            "builds".to_owned(),
            Field {
                key_span: empty,
                value: Value::record(builds, empty),
            },
        );
        let depth = 1 + exports.values().map(|f| f.value.depth()).max().unwrap_or(0);
        Ok(Module {
            exports: Rc::new(crate::value::Record {
                fields: exports,
                depth,
            }),
            images: specs,
            builds: build_specs,
        })
    }

    /// The name of an image or build: a valid name not yet declared by this file for `kind`.
    fn decl_name(
        &mut self,
        kind: DeclKind,
        name: &Expr,
        env: &Env,
        declared: &IndexMap<String, Field>,
    ) -> EResult<(String, Span)> {
        let word = kind.keyword();
        let value = self.eval(name, env)?;
        let Some(text) = value.as_str() else {
            return Err(Diag::new(
                codes::TYPE_MISMATCH,
                name.span,
                format!("{word} name must be a string, found {}", value.type_name()),
            )
            .label("expected a string")
            .help(format!("write `{word} \"name\" {{ … }}`"))
            .into());
        };
        let valid = !text.is_empty()
            && text.len() <= 128
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !valid {
            return Err(Diag::new(
                codes::BAD_IMAGE_NAME,
                name.span,
                format!("invalid {word} name `{text}`"),
            )
            .label(format!("not a valid {word} name"))
            .help(format!(
                "{word} names are 1 to 128 characters from `A-Z a-z 0-9 . _ -`"
            ))
            .into());
        }
        if let Some(first) = declared.get(text) {
            let code = match kind {
                DeclKind::Image => codes::DUPLICATE_IMAGE,
                DeclKind::Build => codes::DUPLICATE_BUILD,
            };
            return Err(Diag::new(
                code,
                name.span,
                format!("{word} `{text}` is declared twice"),
            )
            .label("second declaration")
            .secondary(first.key_span, "first declared here")
            .help(format!("{word} names must be unique within a file"))
            .into());
        }
        Ok((text.to_owned(), name.span))
    }

    fn binding_value(&mut self, binding: &Binding, env: &Env) -> EResult<Value> {
        match &binding.params {
            None => self.eval(&binding.value, env),
            Some(params) if params.len() > MAX_PARAMS => Err(Diag::new(
                codes::TOO_MANY_PARAMS,
                binding.name.span,
                format!(
                    "`{}` has {} parameters, more than the limit of {MAX_PARAMS}",
                    binding.name.name,
                    params.len()
                ),
            )
            .label("too many parameters")
            .help("pass a record and read its fields instead")
            .into()),
            Some(params) => Ok(Value::new(
                V::Func(Rc::new(Func {
                    name: binding.name.clone(),
                    params: params.clone(),
                    body: binding.value.clone(),
                    env: env.clone(),
                })),
                binding.name.span,
            )),
        }
    }

    fn eval(&mut self, expr: &Expr, env: &Env) -> EResult<Value> {
        self.charge(1, expr.span)?;
        self.depth += 1;
        let result = if self.depth > MAX_EVAL_DEPTH {
            Err(self.too_deep(expr.span).into())
        } else {
            self.eval_inner(expr, env)
        };
        self.depth -= 1;
        result
    }

    /// Spends `steps` of the evaluation's budget (see [`MAX_STEPS`]).
    fn charge(&mut self, steps: u64, span: Span) -> EResult<()> {
        self.steps = self.steps.saturating_add(steps);
        if self.steps > MAX_STEPS {
            return Err(self.over_budget(span).into());
        }
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn over_budget(&self, span: Span) -> Diag {
        let mut diag = Diag::new(
            codes::STEP_LIMIT,
            span,
            format!("evaluation took more than {MAX_STEPS} steps"),
        )
        .label("evaluation gave up here")
        .help("is the work growing exponentially, e.g. a value doubled in each call or compared with itself?");
        if let Some(func) = self.calls.last() {
            diag = diag.secondary(func.span, format!("while calling `{}`", func.name));
        }
        diag
    }

    #[cold]
    #[inline(never)]
    fn too_deep(&self, span: Span) -> Diag {
        match self.calls.last() {
            Some(func) => Diag::new(
                codes::RECURSION_LIMIT,
                span,
                format!("function calls nested too deeply (in `{}`)", func.name),
            )
            .label(format!("evaluation gave up at depth {MAX_EVAL_DEPTH}"))
            .secondary(func.span, "function defined here")
            .help("is the recursion missing a base case?"),
            None => Diag::new(codes::TOO_DEEP, span, "expression nested too deeply")
                .label(format!("evaluation gave up at depth {MAX_EVAL_DEPTH}"))
                .help("split the expression with `let` bindings"),
        }
    }

    fn eval_inner(&mut self, expr: &Expr, env: &Env) -> EResult<Value> {
        let span = expr.span;
        match &expr.kind {
            ExprKind::Null => Ok(Value::new(V::Null, span)),
            ExprKind::Bool(b) => Ok(Value::new(V::Bool(*b), span)),
            ExprKind::Int(i, _) => Ok(Value::new(V::Int(*i), span)),
            ExprKind::Str(lit) => self.string_value(lit, env),
            ExprKind::List(list) => self.list(list, env, span),
            ExprKind::Record(record) => self.record(record, env),
            ExprKind::Var(ident) => self.var(ident, env),
            ExprKind::Paren(inner) => self.eval(inner, env),
            ExprKind::Field { target, field } => self.field_access(target, field, env),
            ExprKind::Call { func, args } => self.call_expr(func, args, env, span),
            ExprKind::Binary(b) => self.binary_expr(b.op, b.op_span, &b.lhs, &b.rhs, env, span),
            ExprKind::If {
                cond,
                then,
                otherwise,
            } => self.if_expr(cond, then, otherwise, env),
            ExprKind::LetIn { binding, body } => self.let_in(binding, body, env),
            ExprKind::Import(lit) => self.import(lit, span),
        }
    }

    #[inline(never)]
    fn string_value(&mut self, lit: &StrLit, env: &Env) -> EResult<Value> {
        let text = self.string(lit, env)?;
        Ok(Value::new(V::Str(text.into()), lit.span))
    }

    #[inline(never)]
    fn list(&mut self, list: &Delimited<Expr>, env: &Env, span: Span) -> EResult<Value> {
        check_list_len(list.items.len(), span)?;
        let mut items = Vec::with_capacity(list.items.len());
        for item in &list.items {
            items.push(self.eval(&item.node, env)?);
        }
        check_depth(Value::list(items, span))
    }

    #[inline(never)]
    fn field_access(&mut self, target: &Expr, field: &FieldName, env: &Env) -> EResult<Value> {
        // `images.NAME` reads one image; only a bare `images` makes the record of all of them.
        // The same for `builds`.
        if let ExprKind::Var(ident) = &target.kind
            && let Some(kind) = builtin_kind(&ident.name)
        {
            match env.decl(kind, &field.name) {
                DeclLookup::Declared(Some(decl)) => return Ok(decl),
                DeclLookup::Shadowed(value) => return self.field(&value, field),
                DeclLookup::Declared(None) => {}
            }
        }
        let target_value = self.eval(target, env)?;
        self.field(&target_value, field)
    }

    #[inline(never)]
    fn call_expr(
        &mut self,
        func: &Expr,
        args: &Delimited<Expr>,
        env: &Env,
        span: Span,
    ) -> EResult<Value> {
        let func_value = self.eval(func, env)?;
        let mut arg_values = Vec::with_capacity(args.items.len());
        for arg in &args.items {
            arg_values.push(self.eval(&arg.node, env)?);
        }
        self.call(&func_value, func.span, arg_values, span)
    }

    #[inline(never)]
    fn binary_expr(
        &mut self,
        op: BinOp,
        op_span: Span,
        lhs: &Expr,
        rhs: &Expr,
        env: &Env,
        span: Span,
    ) -> EResult<Value> {
        let a = self.eval(lhs, env)?;
        let b = self.eval(rhs, env)?;
        match (op, &a.kind, &b.kind) {
            (BinOp::Add, V::Str(x), V::Str(y)) => {
                let len = x.len().saturating_add(y.len());
                check_string_len(len, span)?;
                self.charge(len as u64 / BYTES_PER_STEP, span)?;
            }
            (BinOp::Add, V::List(x), V::List(y)) => {
                let len = x.items.len().saturating_add(y.items.len());
                check_list_len(len, span)?;
                self.charge(len as u64, span)?;
            }
            (BinOp::Merge, V::Record(x), V::Record(y)) => {
                self.charge((x.fields.len() + y.fields.len()) as u64, span)?;
            }
            _ => {}
        }
        self.binary(op, op_span, a, b, span)
    }

    fn binary(
        &mut self,
        op: BinOp,
        op_span: Span,
        a: Value,
        b: Value,
        span: Span,
    ) -> EResult<Value> {
        let kind = match op {
            BinOp::Add => match (&a.kind, &b.kind) {
                (V::Int(x), V::Int(y)) => match x.checked_add(*y) {
                    Some(n) => V::Int(n),
                    None => {
                        return Err(Diag::new(codes::INT_OVERFLOW, span, "integer overflow")
                            .label(format!("{x} + {y} does not fit in 64 bits"))
                            .into());
                    }
                },
                (V::Str(x), V::Str(y)) => V::Str(format!("{x}{y}").into()),
                (V::List(x), V::List(y)) => {
                    let mut items = x.items.clone();
                    items.extend(y.items.iter().cloned());
                    return check_depth(Value::list(items, span));
                }
                _ => {
                    let mut diag = Diag::new(
                        codes::BAD_OPERANDS,
                        op_span,
                        format!("cannot add {} and {}", a.type_name(), b.type_name()),
                    )
                    .label("`+` adds two integers, or joins two strings or two lists")
                    .secondary(a.span, format!("this is {}", a.type_name()))
                    .secondary(b.span, format!("this is {}", b.type_name()));
                    if matches!(
                        (&a.kind, &b.kind),
                        (V::Str(_), V::Int(_)) | (V::Int(_), V::Str(_))
                    ) {
                        diag =
                            diag.help("turn the integer into text with interpolation: `\"…${n}\"`");
                    } else if matches!((&a.kind, &b.kind), (V::Record(_), V::Record(_))) {
                        diag = diag.help("merge records with `//`");
                    }
                    return Err(diag.into());
                }
            },
            BinOp::Merge => match (&a.kind, &b.kind) {
                (V::Record(x), V::Record(y)) => {
                    let mut fields = x.fields.clone();
                    for (k, f) in &y.fields {
                        fields.insert(k.clone(), f.clone());
                    }
                    return check_depth(Value::record(fields, span));
                }
                _ => {
                    let bad = if matches!(a.kind, V::Record(_)) {
                        &b
                    } else {
                        &a
                    };
                    return Err(Diag::new(
                        codes::BAD_OPERANDS,
                        bad.span,
                        format!("`//` merges records, found {}", bad.type_name()),
                    )
                    .label(format!("this is {}, not a record", bad.type_name()))
                    .secondary(op_span, "merge here")
                    .help("`a // b` copies the record `a` with the fields of `b` (b wins); join lists with `+`")
                    .into());
                }
            },
            BinOp::Eq | BinOp::NotEq => return self.compare(op, op_span, &a, &b, span),
        };
        Ok(Value::new(kind, span))
    }

    /// `a == b` or `a != b`, spending steps on every value compared.
    fn compare(
        &mut self,
        op: BinOp,
        op_span: Span,
        a: &Value,
        b: &Value,
        span: Span,
    ) -> EResult<Value> {
        let mut budget = MAX_STEPS.saturating_sub(self.steps);
        let equal = a.equals(b, &mut budget);
        self.steps = MAX_STEPS - budget;
        match equal {
            Ok(equal) => Ok(Value::new(V::Bool(equal == (op == BinOp::Eq)), span)),
            Err(Incomparable::Function(func)) => {
                Err(
                    Diag::new(codes::INCOMPARABLE, func, "functions cannot be compared")
                        .label("this is a function")
                        .secondary(op_span, "compared here")
                        .into(),
                )
            }
            Err(Incomparable::OverBudget) => Err(self.over_budget(op_span).into()),
        }
    }

    #[inline(never)]
    fn if_expr(&mut self, cond: &Expr, then: &Expr, otherwise: &Expr, env: &Env) -> EResult<Value> {
        let c = self.eval(cond, env)?;
        match c.kind {
            V::Bool(true) => self.eval(then, env),
            V::Bool(false) => self.eval(otherwise, env),
            _ => Err(Diag::new(
                codes::BAD_CONDITION,
                cond.span,
                format!("`if` condition must be a boolean, found {}", c.type_name()),
            )
            .label(format!("this is {}", c.type_name()))
            .secondary(c.span, "value defined here")
            .help("compare explicitly, e.g. `if x == null then … else …`")
            .into()),
        }
    }

    #[inline(never)]
    fn let_in(&mut self, binding: &Binding, body: &Expr, env: &Env) -> EResult<Value> {
        let value = self.binding_value(binding, env)?;
        let inner = env.bind(binding.name.name.clone(), value);
        self.eval(body, &inner)
    }

    fn var(&mut self, ident: &Ident, env: &Env) -> EResult<Value> {
        if let Some(value) = env.get(&ident.name) {
            if let Some(kind) = builtin_kind(&ident.name) {
                self.charge(env.decl_count(kind) as u64, ident.span)?;
            }
            return Ok(value);
        }
        let mut diag = Diag::new(
            codes::UNKNOWN_VARIABLE,
            ident.span,
            format!("unknown name `{}`", ident.name),
        )
        .label("not in scope");
        let later = self.top_level.get(&ident.span.file).and_then(|names| {
            names
                .iter()
                .find(|n| n.name == ident.name && n.span.start > ident.span.start)
        });
        if let Some(def) = later {
            diag = diag
                .secondary(def.span, "defined here, later in the file")
                .help("a name can only be used after its `let`: move the definition up");
        } else if env.has_decl(DeclKind::Image, &ident.name) {
            diag = diag.help(format!(
                "images are values of the builtin record `images`: did you mean `images.{}`?",
                ident.name
            ));
        } else if env.has_decl(DeclKind::Build, &ident.name) {
            diag = diag.help(format!(
                "builds are values of the builtin record `builds`: did you mean `builds.{}`?",
                ident.name
            ));
        } else {
            let mut names = env.names();
            names.sort_unstable();
            names.dedup();
            diag = diag.maybe_help(did_you_mean(&ident.name, names.iter().map(String::as_str)));
        }
        Err(diag.into())
    }

    fn field(&self, target: &Value, field: &FieldName) -> EResult<Value> {
        match &target.kind {
            V::Record(record) => match record.fields.get(&field.name) {
                Some(f) => Ok(f.value.clone()),
                None => {
                    let mut diag = Diag::new(
                        codes::NO_SUCH_FIELD,
                        field.span,
                        format!("no field `{}` in this record", field.name),
                    )
                    .label("unknown field")
                    .maybe_help(did_you_mean(&field.name, record.fields.keys()));
                    if !target.span.contains(field.span) && target.span.end > target.span.start {
                        diag = diag.secondary(target.span, "the record comes from here");
                    }
                    if diag.help.is_none() {
                        let keys: Vec<String> = record.fields.keys().map(|k| format!("`{k}`")).collect();
                        if keys.is_empty() {
                            diag = diag.note("the record is empty");
                        } else if keys.len() <= 12 {
                            diag = diag.note(format!("the record has {}", keys.join(", ")));
                        }
                    }
                    Err(diag.into())
                }
            },
            V::Image(image) => Err(Diag::new(
                codes::IMAGE_FIELD_ACCESS,
                field.span,
                format!("cannot read field `{}` of image `{}`", field.name, image.name),
            )
            .label("images are opaque")
            .help("use an image as `from = …`; share settings through a `let` record or a template function instead")
            .into()),
            V::Build(build) => Err(Diag::new(
                codes::IMAGE_FIELD_ACCESS,
                field.span,
                format!("cannot read field `{}` of build `{}`", field.name, build.name),
            )
            .label("builds are opaque")
            .help("use a build's outputs with `copy builds.NAME { path = \"…\", to = \"/…\" }` or `source builds.NAME { … }`")
            .into()),
            _ => Err(Diag::new(
                codes::TYPE_MISMATCH,
                field.span,
                format!("cannot read field `{}` of {}", field.name, target.type_name()),
            )
            .label("field access needs a record")
            .secondary(target.span, format!("this is {}", target.type_name()))
            .into()),
        }
    }

    #[inline(never)]
    fn call(
        &mut self,
        func: &Value,
        func_span: Span,
        args: Vec<Value>,
        span: Span,
    ) -> EResult<Value> {
        let V::Func(f) = &func.kind else {
            return Err(not_a_function(func, func_span).into());
        };
        if f.params.len() != args.len() {
            return Err(wrong_arity(f, args.len(), span).into());
        }
        let mut env = f.env.bind(f.name.name.clone(), func.clone());
        for (param, arg) in f.params.iter().zip(args) {
            env = env.bind(param.name.clone(), arg);
        }
        self.calls.push(f.name.clone());
        let result = self.eval(&f.body, &env);
        self.calls.pop();
        result
    }

    fn string(&mut self, lit: &StrLit, env: &Env) -> EResult<String> {
        let mut out = String::new();
        for seg in &lit.cooked {
            match seg {
                Seg::Text(t) => out.push_str(t),
                Seg::Interp(i) => {
                    let Some(expr) = lit.interps.get(*i) else {
                        continue;
                    };
                    let value = self.eval(expr, env)?;
                    if let V::Str(s) = &value.kind {
                        check_string_len(out.len().saturating_add(s.len()), lit.span)?;
                    }
                    match &value.kind {
                        V::Str(s) => out.push_str(s),
                        V::Int(n) => out.push_str(&n.to_string()),
                        V::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
                        _ => {
                            let mut diag = Diag::new(
                                codes::BAD_INTERPOLATION,
                                expr.span,
                                format!("cannot interpolate {} into a string", value.type_name()),
                            )
                            .label(format!("this is {}", value.type_name()))
                            .help("only strings, integers and booleans can be interpolated");
                            if !expr.span.contains(value.span) {
                                diag = diag.secondary(value.span, "value defined here");
                            }
                            return Err(diag.into());
                        }
                    }
                }
            }
        }
        if !lit.interps.is_empty() {
            self.charge(out.len() as u64 / BYTES_PER_STEP, lit.span)?;
        }
        Ok(out)
    }

    fn key(&mut self, key: &Key, env: &Env) -> EResult<(String, Span)> {
        match key {
            Key::Ident(ident) => Ok((ident.name.clone(), ident.span)),
            Key::Str(lit) => Ok((self.string(lit, env)?, lit.span)),
        }
    }

    fn record(&mut self, record: &Record, env: &Env) -> EResult<Value> {
        enum Pending {
            One(Field),
            Blocks { key_span: Span, items: Vec<Value> },
        }
        let mut fields: IndexMap<String, Pending> = IndexMap::new();
        for item in &record.items {
            match &item.node {
                Entry::Field { key, value } => {
                    let (name, key_span) = self.key(key, env)?;
                    if let Some(existing) = fields.get(&name) {
                        let first = match existing {
                            Pending::One(f) => f.key_span,
                            Pending::Blocks { key_span, .. } => *key_span,
                        };
                        return Err(duplicate_key(&name, key_span, first).into());
                    }
                    let value = self.eval(value, env)?;
                    fields.insert(name, Pending::One(Field { key_span, value }));
                }
                Entry::Block { kind, label, body } => {
                    let body_value = self.record(body, env)?;
                    let V::Record(body_record) = body_value.kind else {
                        continue; // `record` always returns a record
                    };
                    let mut body_fields = IndexMap::new();
                    let mut header = kind.span;
                    if let Some(label) = label {
                        let label_value = self.eval(label, env)?;
                        let label_field = schema::label_field(&kind.name);
                        if let Some(f) = body_record.fields.get(label_field) {
                            return Err(Diag::new(
                                codes::DUPLICATE_KEY,
                                f.key_span,
                                format!(
                                    "`{label_field}` is set twice in this `{}` block",
                                    kind.name
                                ),
                            )
                            .label("second definition")
                            .secondary(
                                label.span,
                                format!("the block label already sets `{label_field}`"),
                            )
                            .into());
                        }
                        header = kind.span.to(label.span);
                        body_fields.insert(
                            label_field.to_owned(),
                            Field {
                                key_span: label.span,
                                value: label_value,
                            },
                        );
                    }
                    for (k, f) in &body_record.fields {
                        body_fields.insert(k.clone(), f.clone());
                    }
                    let block = check_depth(Value::record(body_fields, header))?;
                    match fields.get_mut(&kind.name) {
                        Some(Pending::Blocks { items, .. }) => items.push(block),
                        Some(Pending::One(f)) => {
                            return Err(Diag::new(
                                codes::DUPLICATE_KEY,
                                kind.span,
                                format!("`{}` is set by a field and by blocks", kind.name),
                            )
                            .label(format!("this block adds to the list `{}`", kind.name))
                            .secondary(f.key_span, "but the field is also set here")
                            .help(format!(
                                "use either `{0} = [ … ]` or `{0} \"…\" {{ … }}` blocks",
                                kind.name
                            ))
                            .into());
                        }
                        None => {
                            fields.insert(
                                kind.name.clone(),
                                Pending::Blocks {
                                    key_span: kind.span,
                                    items: vec![block],
                                },
                            );
                        }
                    }
                }
            }
        }
        let fields = fields
            .into_iter()
            .map(|(name, pending)| {
                let field = match pending {
                    Pending::One(field) => field,
                    Pending::Blocks { key_span, items } => {
                        let span = match (items.first(), items.last()) {
                            (Some(a), Some(b)) => a.span.to(b.span),
                            _ => key_span,
                        };
                        Field {
                            key_span,
                            value: Value::list(items, span),
                        }
                    }
                };
                (name, field)
            })
            .collect();
        check_depth(Value::record(fields, record.span))
    }

    fn import(&mut self, lit: &StrLit, span: Span) -> EResult<Value> {
        let Some(raw) = lit.plain() else {
            return Err(Diag::new(
                codes::DYNAMIC_IMPORT,
                lit.span,
                "import paths cannot be interpolated",
            )
            .label("interpolated path")
            .into());
        };
        let base = self.files.path(span.file).parent();
        let path = match base.join(&raw) {
            Ok(path) => path,
            Err(e) => {
                return Err(Diag::new(
                    codes::ABSOLUTE_IMPORT,
                    lit.span,
                    format!("cannot import `{raw}`"),
                )
                .label(e.to_string())
                .help("imports are relative to the importing file, which keeps evaluation hermetic")
                .into());
            }
        };
        if let Some(diag) = outside_by_dots(&path, lit.span, "import", &raw) {
            return Err(diag.into());
        }
        if !path.as_str().ends_with(".himg") {
            return Err(Diag::new(
                codes::NOT_HIMG_IMPORT,
                lit.span,
                format!("cannot import `{raw}`: not a `.himg` file"),
            )
            .label("only `.himg` files can be imported")
            .help("data files belong in the image through `copy` or `file`, not `import`")
            .into());
        }
        let module = self.module(&path, Some(span))?;
        Ok(Value::new(V::Record(module.exports.clone()), span))
    }
}

/// Source bytes as text; invalid UTF-8 is a diagnostic pointing at the first bad byte.
pub(crate) fn decode(files: &mut Files, path: &SourcePath, bytes: Vec<u8>) -> DResult<Arc<str>> {
    match String::from_utf8(bytes) {
        Ok(text) => Ok(Arc::from(text)),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let lossy = String::from_utf8_lossy(e.as_bytes()).into_owned();
            // The lossy text is identical up to `at`, so the span is valid in it.
            let file = files.add(path.clone(), Arc::from(lossy));
            Diag::new(
                codes::NOT_UTF8,
                Span::new(file, at, at + 1),
                format!("`{path}` is not valid UTF-8"),
            )
            .label("invalid byte here")
            .help("save the file as UTF-8")
            .err()
        }
    }
}

#[cold]
fn not_a_function(func: &Value, func_span: Span) -> Diag {
    let mut diag = Diag::new(
        codes::NOT_A_FUNCTION,
        func_span,
        format!("{} is not a function", func.type_name()),
    )
    .label(format!("this is {}, it cannot be called", func.type_name()));
    if func.span != func_span {
        diag = diag.secondary(func.span, "value defined here");
    }
    diag
}

#[cold]
fn wrong_arity(f: &Func, given: usize, span: Span) -> Diag {
    let plural = |n: usize| if n == 1 { "argument" } else { "arguments" };
    let params: Vec<&str> = f.params.iter().map(|p| p.name.as_str()).collect();
    Diag::new(
        codes::WRONG_ARITY,
        span,
        format!(
            "`{}` takes {} {} but {} {} given",
            f.name.name,
            f.params.len(),
            plural(f.params.len()),
            given,
            if given == 1 { "was" } else { "were" }
        ),
    )
    .label(format!("called with {given} {}", plural(given)))
    .secondary(
        f.name.span,
        format!("defined here as `{}({})`", f.name.name, params.join(", ")),
    )
}

fn duplicate_key(name: &str, at: Span, first: Span) -> Diag {
    Diag::new(codes::DUPLICATE_KEY, at, format!("duplicate key `{name}`"))
        .label("second definition")
        .secondary(first, "first defined here")
        .help("each key may appear once in a record; to override, merge with `//`")
}

fn check_string_len(len: usize, span: Span) -> EResult<()> {
    if len > MAX_STRING_BYTES {
        return Err(Diag::new(
            codes::VALUE_TOO_LARGE,
            span,
            format!("string of {len} bytes is longer than the limit of {MAX_STRING_BYTES} bytes"),
        )
        .label("this string would be too long")
        .help("is a string doubled in each call? Large files belong in the project, copied with `copy`")
        .into());
    }
    Ok(())
}

fn check_list_len(len: usize, span: Span) -> EResult<()> {
    if len > MAX_LIST_ITEMS {
        return Err(Diag::new(
            codes::VALUE_TOO_LARGE,
            span,
            format!("list of {len} items is longer than the limit of {MAX_LIST_ITEMS} items"),
        )
        .label("this list would be too long")
        .help("is a list doubled in each call?")
        .into());
    }
    Ok(())
}

fn check_depth(value: Value) -> EResult<Value> {
    if value.depth() > MAX_VALUE_DEPTH {
        return Err(
            Diag::new(codes::TOO_DEEP, value.span, "value nested too deeply")
                .label(format!(
                    "lists and records nest more than {MAX_VALUE_DEPTH} levels here"
                ))
                .into(),
        );
    }
    Ok(value)
}

fn not_a_record_body(kind: DeclKind, value: &Value, stmt: Span) -> Diag {
    let word = kind.keyword();
    let mut diag = Diag::new(
        codes::IMAGE_NOT_RECORD,
        value.span,
        format!("{word} body must be a record, found {}", value.type_name()),
    )
    .label(format!("this is {}", value.type_name()));
    if !stmt.contains(value.span) {
        diag = diag.secondary(stmt, format!("in this {word}"));
    }
    if kind == DeclKind::Build {
        diag.help(
            "write `build \"name\" { … }`, or `build \"name\" = f(…)` where `f` returns a record",
        )
    } else if matches!(value.kind, V::Image(_)) {
        diag.help("to extend an image write `image \"name\" { from = images.base }`")
    } else {
        diag.help(
            "write `image \"name\" { … }`, or `image \"name\" = f(…)` where `f` returns a record",
        )
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    use super::*;
    use crate::loader::{EntryKind, MemoryLoader};

    /// Counts reads, and fails with a permission error on `locked.himg`.
    struct CountingLoader {
        inner: MemoryLoader,
        reads: RefCell<BTreeMap<String, usize>>,
    }

    impl SourceLoader for CountingLoader {
        fn read(&self, path: &SourcePath) -> Result<Vec<u8>, SourceError> {
            *self.reads.borrow_mut().entry(path.0.clone()).or_default() += 1;
            if path.as_str() == "locked.himg" {
                return Err(io::Error::new(io::ErrorKind::PermissionDenied, "locked").into());
            }
            self.inner.read(path)
        }

        fn kind(&self, path: &SourcePath) -> Result<Option<EntryKind>, SourceError> {
            self.inner.kind(path)
        }
    }

    fn loader(files: &[(&str, &[u8])]) -> CountingLoader {
        let mut inner = MemoryLoader::new();
        for (path, bytes) in files {
            inner.insert(*path, bytes.to_vec());
        }
        CountingLoader {
            inner,
            reads: RefCell::new(BTreeMap::new()),
        }
    }

    fn codes(result: Result<Evaluated, Diagnostics>) -> Vec<&'static str> {
        result.err().map(|d| d.codes()).unwrap_or_default()
    }

    fn entry(path: &str) -> SourcePath {
        SourcePath(path.to_owned())
    }

    #[test]
    fn each_file_is_read_once() {
        let l = loader(&[
            ("main.himg", b"let a = import \"lib/a.himg\"\nlet b = import \"lib/b.himg\"\nlet c = import \"./lib/../lib/a.himg\"\n"),
            ("lib/a.himg", b"let x = import \"b.himg\"\nimage \"a\" {}\n"),
            ("lib/b.himg", b"let y = 1\n"),
        ]);
        let evaluated = evaluate(&entry("./main.himg"), &l);
        let Ok(evaluated) = evaluated else {
            panic!(
                "{}",
                evaluated.err().map(|d| d.render()).unwrap_or_default()
            )
        };
        assert_eq!(evaluated.entry, entry("main.himg"));
        assert!(evaluated.images.is_empty());
        let read: Vec<&str> = evaluated
            .files_read
            .iter()
            .map(SourcePath::as_str)
            .collect();
        assert_eq!(read, ["lib/a.himg", "lib/b.himg", "main.himg"]);
        assert!(
            l.reads.borrow().values().all(|n| *n == 1),
            "{:?}",
            l.reads.borrow()
        );
    }

    #[test]
    fn loader_failures_are_diagnostics() {
        let l = loader(&[
            ("main.himg", b"let x = import \"locked.himg\"\n"),
            ("bad.himg", b"let x = \"\xff\"\n"),
        ]);
        assert_eq!(codes(evaluate(&entry("main.himg"), &l)), ["H0030"]);
        let bad = evaluate(&entry("bad.himg"), &l);
        let rendered = bad.as_ref().err().map(|d| d.render()).unwrap_or_default();
        assert_eq!(codes(bad), ["H0010"]);
        assert!(rendered.contains("bad.himg:1:10"), "{rendered}");
        let missing = evaluate(&entry("nope.himg"), &l);
        let rendered = missing
            .as_ref()
            .err()
            .map(|d| d.render())
            .unwrap_or_default();
        assert_eq!(
            rendered,
            "error[H0026]: file `nope.himg` does not exist\n--> nope.himg\n = help: import paths are relative to the importing file's directory\n"
        );
        assert_eq!(codes(evaluate(&entry("/etc/x.himg"), &l)), ["H0028"]);
    }

    #[test]
    fn evaluation_is_deterministic() {
        let text = b"let f(n) = { env = { N = \"${n}\" }, ports = [n, 80] }\nimage \"a\" = f(8080)\nimage \"b\" { from = images.a }\n";
        let l = loader(&[("main.himg", text)]);
        let first = evaluate(&entry("main.himg"), &l).ok();
        let second = evaluate(&entry("main.himg"), &l).ok();
        assert!(first.is_some());
        assert_eq!(first, second);
    }

    #[test]
    fn scopes_see_the_top_level_declared_before_them() {
        // A function sees the images and `let`s before its definition, not those after.
        let text = b"image \"a\" {}\nlet f(x) = images.b\nimage \"b\" {}\nimage \"c\" { max_layers = f(1) }\n";
        let l = loader(&[("main.himg", text)]);
        assert_eq!(codes(evaluate(&entry("main.himg"), &l)), ["H0017"]);
        // `images` as a whole holds the images so far; a parameter named `images` shadows it.
        let text = b"image \"a\" {}\nlet n = images\nimage \"b\" { labels = { n = \"${n == { a = images.a }}\" } }\nlet g(images) = images.a\nimage \"c\" { max_layers = g({ a = 3 }) }\n";
        let l = loader(&[("main.himg", text)]);
        let evaluated = evaluate(&entry("main.himg"), &l);
        let Ok(evaluated) = evaluated else {
            panic!(
                "{}",
                evaluated.err().map(|d| d.render()).unwrap_or_default()
            )
        };
        assert_eq!(
            evaluated.images[1]
                .config
                .labels
                .get("n")
                .map(String::as_str),
            Some("true")
        );
        assert_eq!(evaluated.images[2].max_layers, Some(3));
    }

    #[test]
    fn builds_are_values_exported_and_listed_in_order() {
        let lib = b"image \"env\" {}\nbuild \"base\" { environment = images.env, run = \"true\", outputs = [\"lib\"] }\n";
        let main = b"let lib = import \"lib.himg\"\nbuild \"b\" { environment = lib.images.env, run = [\"make\"], outputs = [\"x\"], source lib.builds.base { path = \"lib/a\" } }\nlet so_far = builds\nbuild \"a\" { environment = lib.images.env, run = \"true\", outputs = [\"y\"] }\nlet f(builds) = builds.a\nimage \"b\" { labels = { n = \"${so_far == { b = builds.b }}\", s = f({ a = \"shadowed\" }) }, copy builds.a { to = \"/y\" } }\n";
        let l = loader(&[("lib.himg", lib), ("main.himg", main)]);
        let evaluated = evaluate(&entry("main.himg"), &l);
        let Ok(evaluated) = evaluated else {
            panic!(
                "{}",
                evaluated.err().map(|d| d.render()).unwrap_or_default()
            )
        };
        let names: Vec<&str> = evaluated.builds.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["b", "a"], "only the entry file's builds, in order");
        let labels = &evaluated.images[0].config.labels;
        assert_eq!(labels.get("n").map(String::as_str), Some("true"));
        assert_eq!(labels.get("s").map(String::as_str), Some("shadowed"));
        let crate::spec::BuildSource::Output { build, path, to } = &evaluated.builds[0].sources[0]
        else {
            panic!("expected a build output source")
        };
        assert_eq!(
            (build.name.as_str(), path.as_deref(), to.as_str()),
            ("base", Some("lib/a"), ".")
        );
        assert_eq!(build.declared_in, entry("lib.himg"));
        assert_eq!(
            evaluated.builds[0].environment.declared_in,
            entry("lib.himg")
        );
        // Same text, same value.
        assert_eq!(evaluate(&entry("main.himg"), &l).ok(), Some(evaluated));
    }

    #[test]
    fn a_build_and_an_image_may_share_a_name() {
        let text = b"image \"app\" {}\nbuild \"app\" { environment = images.app, run = \"true\", outputs = [\"a\"] }\nimage \"out\" { copy builds.app { path = \"a\", to = \"/a\" } }\n";
        let l = loader(&[("main.himg", text)]);
        let evaluated = evaluate(&entry("main.himg"), &l);
        assert!(
            evaluated.is_ok(),
            "{:?}",
            evaluated.err().map(|d| d.render())
        );
        // A build used before its statement is unknown, like an image.
        let text = b"image \"env\" {}\nimage \"out\" { copy builds.later { to = \"/a\" } }\nbuild \"later\" { environment = images.env, run = \"true\", outputs = [\"a\"] }\n";
        let l = loader(&[("main.himg", text)]);
        assert_eq!(codes(evaluate(&entry("main.himg"), &l)), ["H0017"]);
    }

    #[test]
    fn functions_are_closures_and_may_recurse() {
        let text = b"let n = 1\nlet add_n(x) = x + n\nlet count(l) = if l == [] then 0 else if l == [1] then 1 else 2\nimage \"a\" { max_layers = add_n(count([1])) }\n";
        let l = loader(&[("main.himg", text)]);
        let evaluated = evaluate(&entry("main.himg"), &l).ok();
        assert_eq!(evaluated.and_then(|e| e.images[0].max_layers), Some(2));
    }
}
