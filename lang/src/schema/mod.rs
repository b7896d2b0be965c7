//! Schema: an image body (a record value) → a validated [`ImageSpec`], a build body → a validated
//! [`BuildSpec`]. Every problem becomes a coded diagnostic pointing at the offending value; all
//! problems of one image or build are reported together.
//!
//! This module holds the entry points, the field tables and typed access to values; [`accounts`],
//! [`config`] and [`content`] check their parts of an image, [`build`] a build's body.

mod accounts;
mod build;
mod config;
mod content;
mod packages;
mod policy;
mod testing;
mod vex;

use std::cell::RefCell;
use std::collections::HashMap;

use crate::codes;
use crate::diagnostic::Diag;
use crate::limits::MAX_SPEC_NODES;
use crate::loader::{EntryKind, SourceLoader, outside_by_dots};
use crate::span::{Files, Span};
use crate::spec::*;
use crate::suggest::did_you_mean;
use crate::syntax::DeclKind;
use crate::value::{Field, Record, V, Value};

use accounts::Accounts;

/// What the schema needs from the evaluator.
pub(crate) struct Cx<'a> {
    pub loader: &'a dyn SourceLoader,
    pub files: &'a Files,
    pub declared_in: &'a SourcePath,
    pub sizes: &'a SpecSizes,
}

/// How many images and builds each spec declared so far embeds, counting repeats and itself (see
/// [`MAX_SPEC_NODES`]); keyed by kind, declaring file and name, which identify a spec.
#[derive(Debug, Default)]
pub(crate) struct SpecSizes(RefCell<HashMap<(DeclKind, SourcePath, String), u64>>);

impl SpecSizes {
    fn get(&self, kind: DeclKind, declared_in: &SourcePath, name: &str) -> u64 {
        self.0
            .borrow()
            .get(&(kind, declared_in.clone(), name.to_owned()))
            .copied()
            .unwrap_or(1)
    }

    fn set(&self, kind: DeclKind, declared_in: &SourcePath, name: &str, size: u64) {
        self.0
            .borrow_mut()
            .insert((kind, declared_in.clone(), name.to_owned()), size);
    }
}

/// The field a block label fills: `user "app" {}` sets `name = "app"`.
pub(crate) fn label_field(kind: &str) -> &'static str {
    match kind {
        "user" | "group" | "layer" | "test" => "name",
        "copy" | "source" => "source",
        "repository" => "name",
        "file" | "symlink" | "dir" => "path",
        "waive" => "rule",
        _ => "label",
    }
}

/// Image fields that become `org.opencontainers.image.<field>` annotations.
pub(crate) const ANNOTATION_FIELDS: &[&str] = &[
    "version",
    "source",
    "revision",
    "description",
    "url",
    "documentation",
    "licenses",
    "authors",
    "title",
    "vendor",
];

pub(crate) const IMAGE_FIELDS: &[&str] = &[
    "from",
    "architectures",
    "architecture",
    "run_as",
    "env",
    "entrypoint",
    "cmd",
    "workdir",
    "labels",
    "annotations",
    "version",
    "source",
    "revision",
    "description",
    "url",
    "documentation",
    "licenses",
    "authors",
    "title",
    "vendor",
    "ports",
    "volumes",
    "stop_signal",
    "max_layers",
    "compression",
    "user",
    "group",
    "layer",
    "copy",
    "file",
    "symlink",
    "dir",
    "repository",
    "repositories",
    "packages",
    "keep_docs",
    "locales",
    "path_exclude",
    "path_include",
    "keep_setuid",
    "alternatives",
    "policy",
    "test",
    "vex",
    "publish",
];

/// Accepted syntactically, rejected until implemented (none at present; kept for the next field).
pub(crate) const RESERVED_FIELDS: &[&str] = &[];

/// The largest uid/gid (`4294967295` is `(uid_t) -1`, "no id").
const MAX_ID: i64 = 4_294_967_294;

/// Validates one image body.
pub(crate) fn image(
    cx: &Cx<'_>,
    name: &str,
    name_span: Span,
    stmt_span: Span,
    body: &Record,
) -> Result<(ImageSpec, u64), Vec<Diag>> {
    let mut c = Check::new(cx, DeclKind::Image, name);
    let spec = c.image(name, body);
    if c.errors.is_empty() {
        cx.sizes.set(DeclKind::Image, cx.declared_in, name, c.size);
        return Ok((spec, c.size));
    }
    let mut errors = c.errors;
    errors.sort_by_key(|d| (d.span.file, d.span.start));
    for diag in &mut errors {
        if !stmt_span.contains(diag.span) {
            diag.secondary
                .push((name_span, format!("while checking image `{name}`")));
        }
    }
    Err(errors)
}

/// Validates one build body.
pub(crate) fn build(
    cx: &Cx<'_>,
    name: &str,
    name_span: Span,
    stmt_span: Span,
    body: &Record,
) -> Result<(BuildSpec, u64), Vec<Diag>> {
    let mut c = Check::new(cx, DeclKind::Build, name);
    let spec = c.build(name, body, stmt_span);
    let size = c.size;
    let mut errors = c.errors;
    match spec {
        Some(spec) if errors.is_empty() => {
            cx.sizes.set(DeclKind::Build, cx.declared_in, name, size);
            return Ok((spec, size));
        }
        _ => {}
    }
    errors.sort_by_key(|d| (d.span.file, d.span.start));
    for diag in &mut errors {
        if !stmt_span.contains(diag.span) {
            diag.secondary
                .push((name_span, format!("while checking build `{name}`")));
        }
    }
    Err(errors)
}

struct Check<'a> {
    cx: &'a Cx<'a>,
    errors: Vec<Diag>,
    /// What is being checked, for [`Check::embed`]'s message.
    kind: DeclKind,
    name: String,
    /// Images and builds the spec embeds so far, itself included (see [`MAX_SPEC_NODES`]).
    size: u64,
}

/// `a` and `b` say the same thing two ways: a diagnostic on the later one, pointing back at the
/// earlier one.
fn both_set(code: &'static str, a: &Field, b: &Field, message: &str) -> Diag {
    let (first, second) = if a.key_span.start <= b.key_span.start {
        (a, b)
    } else {
        (b, a)
    };
    Diag::new(code, second.key_span, message)
        .label("second one")
        .secondary(first.key_span, "first one")
}

fn base_chain(base: Option<&ImageSpec>) -> Vec<&ImageSpec> {
    let mut out = Vec::new();
    let mut next = base;
    while let Some(image) = next {
        out.push(image);
        next = image.base.as_deref();
    }
    out
}

impl<'a> Check<'a> {
    fn new(cx: &'a Cx<'a>, kind: DeclKind, name: &str) -> Check<'a> {
        Check {
            cx,
            errors: Vec::new(),
            kind,
            name: name.to_owned(),
            size: 1,
        }
    }
}

impl Check<'_> {
    fn push(&mut self, diag: Diag) {
        self.errors.push(diag);
    }

    /// Accounts for embedding (copying) the spec `kind` `name` of `declared_in`, used at `span`;
    /// false, with a diagnostic, when that would make this spec larger than [`MAX_SPEC_NODES`].
    fn embed(&mut self, kind: DeclKind, declared_in: &SourcePath, name: &str, span: Span) -> bool {
        let over = self.size > MAX_SPEC_NODES;
        let embedded = self.cx.sizes.get(kind, declared_in, name);
        self.size = self.size.saturating_add(embedded);
        if self.size <= MAX_SPEC_NODES {
            return true;
        }
        if !over {
            let what = match self.kind {
                DeclKind::Image => "image",
                DeclKind::Build => "build",
            };
            self.push(
                Diag::new(
                    codes::SPEC_TOO_LARGE,
                    span,
                    format!(
                        "{what} `{}` embeds more than {MAX_SPEC_NODES} images and builds",
                        self.name
                    ),
                )
                .label(format!(
                    "`{name}` embeds {embedded}, which crosses the limit"
                ))
                .help("each `from`, `environment`, `copy builds.…` and `source builds.…` embeds what it names with all it uses, repeats included: use each build once, or merge builds"),
            );
        }
        false
    }

    // ------------------------------------------------------------ image

    fn image(&mut self, name: &str, body: &Record) -> ImageSpec {
        self.unknown_fields(body, IMAGE_FIELDS, "image", true);
        let get = |key: &str| body.fields.get(key);

        let base = get("from").and_then(|f| self.base(f));
        let base_reference = get("from").and_then(|f| self.base_reference(f));
        let architectures =
            self.architectures(get("architectures"), get("architecture"), base.as_ref());
        let groups = self.groups(get("group"), base.as_ref());
        let users = self.users(get("user"), base.as_ref());
        let registry_base = base_reference.is_some()
            || base_chain(base.as_ref())
                .iter()
                .any(|b| b.base_reference.is_some());
        let accounts = Accounts::new(&users, &groups, base.as_ref(), registry_base);
        if let Some(f) = get("group") {
            self.check_members(f, &accounts);
        }

        let mut config = ConfigSpec {
            user: get("run_as").and_then(|f| self.run_as(f, &accounts)),
            ..ConfigSpec::default()
        };
        if let Some(f) = get("env") {
            config.env = self
                .string_record(f, "env", KeyKind::Env)
                .unwrap_or_default();
        }
        config.entrypoint = get("entrypoint").and_then(|f| self.arguments(f, "entrypoint"));
        config.cmd = get("cmd").and_then(|f| self.arguments(f, "cmd"));
        config.workdir = get("workdir").and_then(|f| self.abs_path(f, "workdir"));
        if let Some(f) = get("labels") {
            config.labels = self
                .string_record(f, "labels", KeyKind::Label)
                .unwrap_or_default()
                .into_iter()
                .collect();
        }
        if let Some(f) = get("ports") {
            config.exposed_ports = self.ports(f);
        }
        if let Some(f) = get("volumes") {
            config.volumes = self.volumes(f);
        }
        config.stop_signal = get("stop_signal").and_then(|f| self.stop_signal(f));

        let annotations = self.annotations(body);
        let max_layers = get("max_layers").and_then(|f| self.int_in(f, "max_layers", 1, 127));
        let compression = get("compression")
            .and_then(|f| self.compression(f))
            .unwrap_or_default();
        let layers = self.layers(body, &accounts);
        let packages = self.packages(body, base.as_ref());
        let policy = self.policy(get("policy"), base.as_ref());
        let tests = get("test")
            .map(|f| self.tests(f, &accounts))
            .unwrap_or_default();
        let vex = self.vex(get("vex"), base.as_ref());
        let publish = get("publish").and_then(|f| self.publish(f));

        ImageSpec {
            name: name.to_owned(),
            declared_in: self.cx.declared_in.clone(),
            base: base.map(Box::new),
            base_reference,
            architectures,
            config,
            annotations,
            users,
            groups,
            layers,
            max_layers,
            compression,
            packages,
            policy,
            tests,
            vex,
            publish,
        }
    }

    fn unknown_fields(&mut self, record: &Record, known: &[&str], what: &str, image: bool) {
        for (key, field) in &record.fields {
            if known.contains(&key.as_str()) {
                continue;
            }
            if image && RESERVED_FIELDS.contains(&key.as_str()) {
                self.push(
                    Diag::new(
                        codes::NOT_SUPPORTED,
                        field.key_span,
                        format!("`{key}` is not supported yet"),
                    )
                    .label("reserved for a later version")
                    .help(format!("remove `{key}` for now; this version builds images from files, accounts, settings and Debian packages only")),
                );
                continue;
            }
            let help = did_you_mean(
                key,
                known
                    .iter()
                    .chain(if image { RESERVED_FIELDS } else { &[] }),
            )
            .unwrap_or_else(|| {
                if known.len() <= 12 {
                    format!("the fields of {what} are {}", list_names(known))
                } else {
                    format!("see the fields of {what} in the language reference")
                }
            });
            self.push(
                Diag::new(
                    codes::UNKNOWN_FIELD,
                    field.key_span,
                    format!("unknown field `{key}` in {what}"),
                )
                .label("unknown field")
                .help(help),
            );
        }
    }
    // ------------------------------------------------------------ typed access

    fn mismatch(&mut self, field: &Field, name: &str, expected: &str, help: Option<String>) {
        let value = &field.value;
        let mut diag = Diag::new(
            codes::TYPE_MISMATCH,
            value.span,
            format!("`{name}` must be {expected}, found {}", value.type_name()),
        )
        .label(format!("expected {expected}"))
        .maybe_help(help);
        if value.span.file != field.key_span.file || value.span.start < field.key_span.start {
            diag = diag.secondary(field.key_span, format!("`{name}` is set here"));
        }
        self.push(diag);
    }

    /// A project file that the string field `key` names relative to the file declaring it (a copy
    /// source, a keyring): non-empty, relative, and present in the loader. `noun` names it in
    /// diagnostics; `absolute_help` says, given the declaring file, why it must be relative.
    /// Gives the text as written, the resolved path and what the loader holds there.
    fn project_file(
        &mut self,
        field: &Field,
        key: &str,
        noun: &str,
        absolute_help: impl FnOnce(&SourcePath) -> String,
    ) -> Option<(String, SourcePath, EntryKind)> {
        let text = self.string(field, key)?;
        let span = field.value.span;
        if text.is_empty() || text.contains('\0') {
            self.push(
                Diag::new(
                    codes::BAD_PATH,
                    span,
                    format!("{noun} must be a non-empty path"),
                )
                .label("invalid path"),
            );
            return None;
        }
        let declaring = self.cx.files.path(span.file);
        if text.starts_with('/') {
            self.push(
                Diag::new(
                    codes::ABSOLUTE_SOURCE,
                    span,
                    format!("{noun} `{text}` is absolute"),
                )
                .label("absolute path")
                .help(absolute_help(&declaring)),
            );
            return None;
        }
        let path = match declaring.parent().join(&text) {
            Ok(path) => path,
            Err(e) => {
                self.push(Diag::new(codes::BAD_PATH, span, e.to_string()).label("invalid path"));
                return None;
            }
        };
        if let Some(diag) = outside_by_dots(&path, span, noun, &text) {
            self.push(diag);
            return None;
        }
        match self.cx.loader.kind(&path) {
            Ok(Some(kind)) => Some((text, path, kind)),
            Ok(None) => {
                self.push(
                    Diag::new(
                        codes::MISSING_SOURCE,
                        span,
                        format!("{noun} `{text}` does not exist"),
                    )
                    .label(format!("looked for `{path}`"))
                    .help(format!(
                        "{noun}s are relative to the directory of `{declaring}`"
                    )),
                );
                None
            }
            Err(e) => {
                self.push(e.diagnostic(&path, span, noun));
                None
            }
        }
    }

    fn string(&mut self, field: &Field, name: &str) -> Option<String> {
        match &field.value.kind {
            V::Str(s) => Some(s.to_string()),
            V::Int(n) => {
                let help = format!("quote it: `\"{n}\"`");
                self.mismatch(field, name, "a string", Some(help));
                None
            }
            V::List(_) => {
                self.mismatch(
                    field,
                    name,
                    "a string",
                    Some("a single value is expected here, not a list".into()),
                );
                None
            }
            _ => {
                self.mismatch(field, name, "a string", None);
                None
            }
        }
    }

    fn required<'f>(
        &mut self,
        record: &'f Record,
        span: Span,
        key: &str,
        what: &str,
    ) -> Option<&'f Field> {
        let field = record.fields.get(key);
        if field.is_none() {
            self.push(
                Diag::new(
                    codes::MISSING_FIELD,
                    span,
                    format!("missing field `{key}` in {what}"),
                )
                .label(format!("`{key}` is required"))
                .help(format!("add `{key} = …`")),
            );
        }
        field
    }

    fn int_in(&mut self, field: &Field, name: &str, lo: i64, hi: i64) -> Option<u32> {
        let V::Int(n) = field.value.kind else {
            let help = match &field.value.kind {
                V::Str(s) if s.parse::<i64>().is_ok() => Some(format!("remove the quotes: `{s}`")),
                _ => None,
            };
            self.mismatch(field, name, "an integer", help);
            return None;
        };
        if n < lo || n > hi {
            self.push(
                Diag::new(
                    codes::OUT_OF_RANGE,
                    field.value.span,
                    format!("`{name}` must be between {lo} and {hi}, found {n}"),
                )
                .label("out of range"),
            );
            return None;
        }
        u32::try_from(n).ok()
    }

    fn bool(&mut self, field: &Field, name: &str) -> Option<bool> {
        match field.value.kind {
            V::Bool(b) => Some(b),
            _ => {
                self.mismatch(
                    field,
                    name,
                    "a boolean",
                    Some("write `true` or `false`".into()),
                );
                None
            }
        }
    }

    /// A list of records, as block sugar produces.
    fn records<'f>(&mut self, field: &'f Field, name: &str) -> Vec<&'f Value> {
        match &field.value.kind {
            V::List(list) => {
                let mut out = Vec::new();
                for item in &list.items {
                    if matches!(item.kind, V::Record(_)) {
                        out.push(item);
                    } else {
                        let f = Field {
                            key_span: field.key_span,
                            value: item.clone(),
                        };
                        self.mismatch(&f, name, "a record", None);
                    }
                }
                out
            }
            _ => {
                let help = format!(
                    "declare it as a block: `{name} \"…\" {{ … }}`, or give a list of records"
                );
                self.mismatch(field, name, "a list of records", Some(help));
                Vec::new()
            }
        }
    }

    fn string_list(&mut self, field: &Field, name: &str) -> Option<Vec<String>> {
        match &field.value.kind {
            V::List(list) => {
                let mut out = Vec::new();
                let mut ok = true;
                for item in &list.items {
                    let f = Field {
                        key_span: field.key_span,
                        value: item.clone(),
                    };
                    match self.string(&f, &format!("each item of `{name}`")) {
                        Some(s) => out.push(s),
                        None => ok = false,
                    }
                }
                ok.then_some(out)
            }
            V::Str(s) => {
                let help = format!("use a list: `[{:?}]`", s.to_string());
                self.mismatch(field, name, "a list of strings", Some(help));
                None
            }
            _ => {
                self.mismatch(field, name, "a list of strings", None);
                None
            }
        }
    }

    /// A command (`cmd`, `entrypoint`): a list of strings without NUL bytes.
    fn arguments(&mut self, field: &Field, name: &str) -> Option<Vec<String>> {
        let args = self.string_list(field, name)?;
        let V::List(list) = &field.value.kind else {
            return Some(args);
        };
        let mut ok = true;
        for (arg, item) in args.iter().zip(&list.items) {
            ok &= self.config_text(arg, item.span, name, TextRule::Argument);
        }
        ok.then_some(args)
    }

    fn string_record(
        &mut self,
        field: &Field,
        name: &str,
        keys: KeyKind,
    ) -> Option<Vec<(String, String)>> {
        let V::Record(record) = &field.value.kind else {
            let help = format!("write `{name} = {{ KEY = \"value\" }}`");
            self.mismatch(field, name, "a record of strings", Some(help));
            return None;
        };
        let mut out = Vec::new();
        for (key, f) in &record.fields {
            if let Some(problem) = keys.problem(key) {
                self.push(
                    Diag::new(
                        codes::BAD_KEY,
                        f.key_span,
                        format!("invalid key `{key}` in `{name}`"),
                    )
                    .label(problem),
                );
                continue;
            }
            let Some(value) = self.string(f, &format!("{name}.{key}")) else {
                continue;
            };
            if self.config_text(
                &value,
                f.value.span,
                &format!("{name}.{key}"),
                TextRule::Line,
            ) {
                out.push((key.clone(), value));
            }
        }
        Some(out)
    }

    /// Whether `text`, the config string `name`, is one the runtime can carry (see [`TextRule`]);
    /// reports it when not.
    fn config_text(&mut self, text: &str, span: Span, name: &str, rule: TextRule) -> bool {
        let bad = text.chars().find(|c| match rule {
            TextRule::Line => c.is_control() && *c != '\t',
            TextRule::Argument => *c == '\0',
        });
        let Some(c) = bad else {
            return true;
        };
        let help = match rule {
            TextRule::Line => {
                "environment variables, labels and annotations are one line of text: control characters other than tab are refused"
            }
            TextRule::Argument => "the kernel ends a command's arguments at a NUL byte",
        };
        self.push(
            Diag::new(
                codes::BAD_CONFIG_STRING,
                span,
                format!("`{name}` contains the control character U+{:04X}", c as u32),
            )
            .label(format!("{} not allowed here", control_name(c)))
            .help(help),
        );
        false
    }

    fn list_of(&mut self, field: &Field, name: &str) -> Option<Vec<Value>> {
        match &field.value.kind {
            V::List(list) => Some(list.items.clone()),
            V::Str(s) => {
                let help = format!("use a list: `[{:?}]`", s.to_string());
                self.mismatch(field, name, "a list", Some(help));
                None
            }
            _ => {
                self.mismatch(field, name, "a list", None);
                None
            }
        }
    }

    // ------------------------------------------------------------ config

    fn abs_path(&mut self, field: &Field, name: &str) -> Option<String> {
        let text = self.string(field, name)?;
        self.normalize_abs(&text, field.value.span, name)
    }

    /// Normalises an absolute path inside the image (`.` and `//` dropped, `..` resolved).
    fn normalize_abs(&mut self, text: &str, span: Span, name: &str) -> Option<String> {
        if text.is_empty() || text.contains('\0') {
            self.push(
                Diag::new(
                    codes::BAD_PATH,
                    span,
                    format!("`{name}` must be a non-empty path without NUL bytes"),
                )
                .label("invalid path"),
            );
            return None;
        }
        if !text.starts_with('/') {
            self.push(
                Diag::new(
                    codes::RELATIVE_PATH,
                    span,
                    format!("`{name}` must be an absolute path, found `{text}`"),
                )
                .label("relative path")
                .help(format!(
                    "paths inside the image start at `/`: did you mean `/{text}`?"
                )),
            );
            return None;
        }
        let mut parts: Vec<&str> = Vec::new();
        for part in text.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    if parts.pop().is_none() {
                        self.push(
                            Diag::new(
                                codes::PATH_ESCAPES,
                                span,
                                format!("`{text}` climbs above `/`"),
                            )
                            .label("`..` escapes the image root")
                            .help("remove the extra `..`"),
                        );
                        return None;
                    }
                }
                other => parts.push(other),
            }
        }
        Some(format!("/{}", parts.join("/")))
    }
}

fn list_names(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a config string may hold.
#[derive(Clone, Copy)]
pub(super) enum TextRule {
    /// Environment values, labels and annotations: no control character but tab (a NUL ends the
    /// string for the runtime; a newline splits `KEY=VALUE` lines and log lines).
    Line,
    /// Command arguments (`cmd`, `entrypoint`): no NUL; newlines are fine (`sh -c` scripts).
    Argument,
}

/// How a control character is called in messages.
fn control_name(c: char) -> String {
    match c {
        '\0' => "NUL".to_owned(),
        '\n' => "a line feed".to_owned(),
        '\r' => "a carriage return".to_owned(),
        '\u{1b}' => "an escape character".to_owned(),
        other => format!("U+{:04X}", other as u32),
    }
}

#[derive(Clone, Copy)]
pub(super) enum KeyKind {
    Env,
    Label,
}

impl KeyKind {
    fn problem(self, key: &str) -> Option<&'static str> {
        if key.is_empty() {
            return Some("keys cannot be empty");
        }
        if key.chars().any(char::is_control) {
            return Some("keys cannot contain control characters (NUL, tab, line feed, …)");
        }
        match self {
            KeyKind::Env if key.contains('=') => {
                Some("environment variable names cannot contain `=`")
            }
            _ => None,
        }
    }
}
