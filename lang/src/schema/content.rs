//! Content: `layer` blocks and the `copy`, `file`, `symlink` and `dir` items in them, with their
//! paths, modes and owners.

use std::collections::BTreeMap;

use super::accounts::{AccountKind, Accounts};
use super::build::{as_build, without_globs};
use super::{Check, MAX_ID};
use crate::codes;
use crate::diagnostic::Diag;
use crate::loader::EntryKind;
use crate::span::Span;
use crate::spec::*;
use crate::suggest::did_you_mean;
use crate::value::{Field, Record, V};

const LAYER_FIELDS: &[&str] = &["name", "copy", "file", "symlink", "dir"];
const ITEM_KINDS: &[&str] = &["copy", "file", "symlink", "dir"];
const COPY_FIELDS: &[&str] = &[
    "source", "to", "include", "exclude", "mode", "dir_mode", "owner", "group",
];
/// Fields of `copy builds.X { … }`.
const COPY_OUTPUT_FIELDS: &[&str] = &["source", "path", "to", "mode", "dir_mode", "owner", "group"];
const FILE_FIELDS: &[&str] = &["path", "text", "mode", "owner", "group"];
const SYMLINK_FIELDS: &[&str] = &["path", "target", "owner", "group"];
const DIR_FIELDS: &[&str] = &["path", "mode", "owner", "group"];

/// A destination claimed by an item, for overlap checks.
struct Claim {
    path: String,
    span: Span,
    /// A file or symlink: nothing may lie below it.
    leaf: bool,
}

/// An `owner` or `group` value: its ids, or a name left to the composer (see [`DeferredOwner`]).
enum Resolved {
    /// The id and the group it implies.
    Ids((u32, u32)),
    Deferred(String),
}

impl Check<'_> {
    // ------------------------------------------------------------ layers and items

    pub(super) fn layers(&mut self, body: &Record, accounts: &Accounts) -> Vec<LayerSpec> {
        let mut layers: Vec<LayerSpec> = Vec::new();
        let mut names: Vec<(String, Span)> = Vec::new();
        let mut claims: Vec<Claim> = Vec::new();
        if let Some(field) = body.fields.get("layer") {
            for value in self.records(field, "layer") {
                let V::Record(record) = &value.kind else {
                    continue;
                };
                self.unknown_fields(record, LAYER_FIELDS, "a `layer` block", false);
                let name = self
                    .required(record, value.span, "name", "a `layer` block")
                    .and_then(|f| self.string(f, "name").map(|n| (n, f.value.span)));
                let items = self.items(record, accounts, &mut claims);
                let Some((name, span)) = name else { continue };
                if name.is_empty() {
                    self.push(
                        Diag::new(codes::BAD_VALUE, span, "layer name is empty").label("empty"),
                    );
                    continue;
                }
                if let Some((_, first)) = names.iter().find(|(n, _)| *n == name) {
                    self.push(
                        Diag::new(
                            codes::DUPLICATE_LAYER,
                            span,
                            format!("layer `{name}` is declared twice"),
                        )
                        .label("second declaration")
                        .secondary(*first, "first declared here"),
                    );
                    continue;
                }
                names.push((name.clone(), span));
                layers.push(LayerSpec { name, items });
            }
        }
        let direct = self.items(body, accounts, &mut claims);
        if !direct.is_empty() {
            if let Some((_, span)) = names.iter().find(|(n, _)| n == "contents") {
                self.push(
                    Diag::new(codes::DUPLICATE_LAYER, *span, "layer name `contents` is taken")
                        .label("clashes with the implicit layer")
                        .help("items declared directly in the image body form a layer named `contents`; rename this layer"),
                );
            }
            layers.push(LayerSpec {
                name: "contents".to_owned(),
                items: direct,
            });
        }
        self.check_claims(&claims);
        layers
    }

    fn items(
        &mut self,
        record: &Record,
        accounts: &Accounts,
        claims: &mut Vec<Claim>,
    ) -> Vec<ContentItem> {
        let mut out = Vec::new();
        for (kind, field) in &record.fields {
            if !ITEM_KINDS.contains(&kind.as_str()) {
                continue;
            }
            for value in self.records(field, kind) {
                let V::Record(item) = &value.kind else {
                    continue;
                };
                let made = match kind.as_str() {
                    "copy" => self.copy(item, value.span, accounts, claims),
                    "file" => self.file(item, value.span, accounts, claims),
                    "symlink" => self.symlink(item, value.span, accounts, claims),
                    _ => self.dir(item, value.span, accounts, claims),
                };
                out.extend(made);
            }
        }
        out
    }

    fn dest(
        &mut self,
        record: &Record,
        span: Span,
        key: &str,
        what: &str,
        leaf: bool,
        claims: &mut Vec<Claim>,
    ) -> Option<String> {
        let field = self.required(record, span, key, what)?;
        let path = self.abs_path(field, key)?;
        claims.push(Claim {
            path: path.clone(),
            span: field.value.span,
            leaf,
        });
        Some(path)
    }

    fn copy(
        &mut self,
        record: &Record,
        span: Span,
        accounts: &Accounts,
        claims: &mut Vec<Claim>,
    ) -> Option<ContentItem> {
        const WHAT: &str = "a `copy` block";
        if let Some(field) = record.fields.get("source")
            && let Some(build) = as_build(&field.value)
        {
            let used_at = field.value.span;
            return self.copy_output(record, span, (build, used_at), accounts, claims);
        }
        self.unknown_fields(record, COPY_FIELDS, WHAT, false);
        let source = self
            .required(record, span, "source", WHAT)
            .and_then(|f| self.source(f));
        let to_field = self.required(record, span, "to", WHAT);
        let to = to_field.and_then(|f| self.abs_path(f, "to"));
        let include = self.globs(record.fields.get("include"), "include");
        let exclude = self.globs(record.fields.get("exclude"), "exclude");
        let mode = record.fields.get("mode").map(|f| self.mode(f));
        let dir_mode = record.fields.get("dir_mode").map(|f| self.mode(f));
        let owner = self.owner(record, accounts);
        let ((source, is_dir), to, to_field, include, exclude, owner) =
            (source?, to?, to_field?, include?, exclude?, owner?);
        let mode = mode.unwrap_or(Some(0))?;
        let dir_mode = dir_mode.unwrap_or(Some(0))?;
        if !is_dir {
            if to_field.value.as_str().is_some_and(|t| t.ends_with('/')) && to != "/" {
                let file_name = source.as_str().rsplit('/').next().unwrap_or("");
                self.push(
                    Diag::new(
                        codes::FILE_SOURCE_MISUSE,
                        to_field.value.span,
                        "`to` names a directory, but the source is a file",
                    )
                    .label("ends with `/`")
                    .help(format!(
                        "a file lands exactly at `to`: write `to = \"{to}/{file_name}\"`"
                    )),
                );
                return None;
            }
            for (key, globs) in [("include", &include), ("exclude", &exclude)] {
                if !globs.is_empty() {
                    let span = record.fields.get(key).map_or(span, |f| f.key_span);
                    self.push(
                        Diag::new(
                            codes::FILE_SOURCE_MISUSE,
                            span,
                            format!("`{key}` needs a directory source"),
                        )
                        .label(format!("`{source}` is a file"))
                        .help(format!(
                            "remove `{key}`, or copy the directory that contains the file"
                        )),
                    );
                    return None;
                }
            }
        }
        claims.push(Claim {
            path: to.clone(),
            span: to_field.value.span,
            leaf: !is_dir,
        });
        Some(ContentItem::Copy {
            source,
            source_is_dir: is_dir,
            to,
            include,
            exclude,
            mode: record.fields.contains_key("mode").then_some(mode),
            dir_mode: record.fields.contains_key("dir_mode").then_some(dir_mode),
            owner,
        })
    }

    /// `copy builds.X { path, to, mode, dir_mode, owner, group }`: a build's outputs, or the part
    /// `path` selects, placed at `to`.
    fn copy_output(
        &mut self,
        record: &Record,
        span: Span,
        (build, used_at): (&BuildSpec, Span),
        accounts: &Accounts,
        claims: &mut Vec<Claim>,
    ) -> Option<ContentItem> {
        let had_globs = self.refuse_globs(record, build);
        let record = without_globs(record);
        self.unknown_fields(
            &record,
            COPY_OUTPUT_FIELDS,
            "a `copy builds.…` block",
            false,
        );
        let path = record
            .fields
            .get("path")
            .map(|f| self.output_path(f, build));
        let to_field = self.required(&record, span, "to", "a `copy` block");
        let to = to_field.and_then(|f| self.abs_path(f, "to"));
        let mode = record.fields.get("mode").map(|f| self.mode(f));
        let dir_mode = record.fields.get("dir_mode").map(|f| self.mode(f));
        let owner = self.owner(&record, accounts);
        let (to, to_field, owner) = (to?, to_field?, owner?);
        let path = path.map_or(Some(None), |p| p.map(Some))?;
        let mode = mode.map_or(Some(None), |m| m.map(Some))?;
        let dir_mode = dir_mode.map_or(Some(None), |m| m.map(Some))?;
        // Whether the output is a file is known only once it is built: claim it as a directory.
        claims.push(Claim {
            path: to.clone(),
            span: to_field.value.span,
            leaf: false,
        });
        if had_globs
            || !self.embed(
                crate::syntax::DeclKind::Build,
                &build.declared_in,
                &build.name,
                used_at,
            )
        {
            return None;
        }
        Some(ContentItem::BuildOutput {
            build: Box::new(build.clone()),
            path,
            to,
            mode,
            dir_mode,
            owner,
        })
    }

    /// A copy source: relative to the file that wrote the string, and present in the loader.
    fn source(&mut self, field: &Field) -> Option<(SourcePath, bool)> {
        let (_, path, kind) = self.project_file(field, "source", "copy source", |declaring| {
            format!("copy sources are relative to the directory of `{declaring}`, which keeps builds hermetic")
        })?;
        Some((path, kind == EntryKind::Dir))
    }

    pub(super) fn globs(&mut self, field: Option<&Field>, name: &str) -> Option<Vec<String>> {
        let Some(field) = field else {
            return Some(Vec::new());
        };
        let items = self.string_list(field, name)?;
        let values = match &field.value.kind {
            V::List(list) => list.items.clone(),
            _ => Vec::new(),
        };
        let mut ok = true;
        for (glob, value) in items.iter().zip(&values) {
            if let Some(problem) = glob_problem(glob) {
                ok = false;
                self.push(
                    Diag::new(codes::BAD_GLOB, value.span, format!("bad glob `{glob}`"))
                        .label(problem)
                        .help("globs use `*`, `**`, `?`, `[abc]` and `{a,b}`, relative to the copied directory"),
                );
            }
        }
        ok.then_some(items)
    }

    fn file(
        &mut self,
        record: &Record,
        span: Span,
        accounts: &Accounts,
        claims: &mut Vec<Claim>,
    ) -> Option<ContentItem> {
        const WHAT: &str = "a `file` block";
        self.unknown_fields(record, FILE_FIELDS, WHAT, false);
        let path = self.dest(record, span, "path", WHAT, true, claims);
        let text = self
            .required(record, span, "text", WHAT)
            .and_then(|f| self.string(f, "text"));
        let mode = record
            .fields
            .get("mode")
            .map_or(Some(0o644), |f| self.mode(f));
        let owner = self.owner(record, accounts);
        Some(ContentItem::File {
            path: path?,
            text: text?,
            mode: mode?,
            owner: owner?,
        })
    }

    fn symlink(
        &mut self,
        record: &Record,
        span: Span,
        accounts: &Accounts,
        claims: &mut Vec<Claim>,
    ) -> Option<ContentItem> {
        const WHAT: &str = "a `symlink` block";
        self.unknown_fields(record, SYMLINK_FIELDS, WHAT, false);
        let path = self.dest(record, span, "path", WHAT, true, claims);
        let target = self.required(record, span, "target", WHAT).and_then(|f| {
            let target = self.string(f, "target")?;
            if target.is_empty() || target.contains('\0') {
                self.push(
                    Diag::new(
                        codes::BAD_PATH,
                        f.value.span,
                        "symlink target must be a non-empty path",
                    )
                    .label("invalid target"),
                );
                return None;
            }
            Some(target)
        });
        let owner = self.owner(record, accounts);
        Some(ContentItem::Symlink {
            path: path?,
            target: target?,
            owner: owner?,
        })
    }

    fn dir(
        &mut self,
        record: &Record,
        span: Span,
        accounts: &Accounts,
        claims: &mut Vec<Claim>,
    ) -> Option<ContentItem> {
        const WHAT: &str = "a `dir` block";
        self.unknown_fields(record, DIR_FIELDS, WHAT, false);
        let path = self.dest(record, span, "path", WHAT, false, claims);
        let mode = record
            .fields
            .get("mode")
            .map_or(Some(0o755), |f| self.mode(f));
        let owner = self.owner(record, accounts);
        Some(ContentItem::Dir {
            path: path?,
            mode: mode?,
            owner: owner?,
        })
    }

    pub(super) fn mode(&mut self, field: &Field) -> Option<u32> {
        let value = &field.value;
        match &value.kind {
            V::Int(n) => {
                let raw = self.cx.files.snippet(value.span);
                let decimal_literal =
                    raw.len() > 1 && raw.chars().all(|c| c.is_ascii_digit() || c == '_');
                if decimal_literal && *n > 7 {
                    let digits: String = raw.chars().filter(|c| *c != '_').collect();
                    if digits.chars().all(|c| ('0'..='7').contains(&c)) {
                        self.push(
                            Diag::new(
                                codes::DECIMAL_MODE,
                                value.span,
                                format!("bad mode `{raw}`: modes are octal"),
                            )
                            .label(format!("this is decimal {n} (octal 0o{n:o})"))
                            .help(format!("did you mean `0o{digits}`?")),
                        );
                        return None;
                    }
                    if *n <= 0o7777 {
                        self.push(
                            Diag::new(
                                codes::DECIMAL_MODE,
                                value.span,
                                format!("bad mode `{raw}`: modes are octal"),
                            )
                            .label("written in decimal")
                            .help(format!("write modes in octal: this value is `0o{n:o}`")),
                        );
                        return None;
                    }
                }
                if *n < 0 || *n > 0o7777 {
                    self.push(
                        Diag::new(codes::MODE_TOO_LARGE, value.span, format!("mode `{raw}` is too large"))
                            .label("above 0o7777")
                            .help("a mode has at most 12 bits: `0o7777` (setuid, setgid, sticky, then rwx for user, group, others)"),
                    );
                    return None;
                }
                u32::try_from(*n).ok()
            }
            V::Str(s) => {
                let digits = s.trim_start_matches("0o").trim_start_matches('0');
                let help =
                    if !s.is_empty() && s.chars().all(|c| ('0'..='7').contains(&c) || c == 'o') {
                        format!(
                            "write an octal integer without quotes: `0o{}`",
                            if digits.is_empty() { "0" } else { digits }
                        )
                    } else {
                        "write an octal integer such as `0o644`".into()
                    };
                self.mismatch(field, "mode", "an integer", Some(help));
                None
            }
            _ => {
                self.mismatch(
                    field,
                    "mode",
                    "an integer",
                    Some("write an octal integer such as `0o644`".into()),
                );
                None
            }
        }
    }

    /// `owner` (uid or user name) and `group` (gid or group name) → numeric ownership.
    fn owner(&mut self, record: &Record, accounts: &Accounts) -> Option<Owner> {
        let mut ok = true;
        let (mut uid, mut default_gid) = (0, 0);
        let mut deferred = DeferredOwner::default();
        if let Some(field) = record.fields.get("owner") {
            match self.account(field, "owner", AccountKind::User, accounts) {
                Some(Resolved::Ids(ids)) => (uid, default_gid) = ids,
                Some(Resolved::Deferred(name)) => deferred.user = Some(name),
                None => ok = false,
            }
        }
        let mut gid = default_gid;
        if let Some(field) = record.fields.get("group") {
            match self.account(field, "group", AccountKind::Group, accounts) {
                Some(Resolved::Ids((g, _))) => gid = g,
                Some(Resolved::Deferred(name)) => deferred.group = Some(name),
                None => ok = false,
            }
        }
        deferred.primary_group = deferred.user.is_some() && !record.fields.contains_key("group");
        let deferred = (deferred != DeferredOwner::default()).then_some(deferred);
        ok.then_some(Owner { uid, gid, deferred })
    }

    /// The field `key`: a numeric id, or the name of a `kind` account of the image or its bases.
    /// Gives the id and the group it implies (see [`Accounts::find`]).
    fn account(
        &mut self,
        field: &Field,
        key: &str,
        kind: AccountKind,
        accounts: &Accounts,
    ) -> Option<Resolved> {
        let (noun, id) = (kind.noun(), kind.id());
        match &field.value.kind {
            V::Int(_) => self
                .int_in(field, key, 0, MAX_ID)
                .map(|n| Resolved::Ids(accounts.by_id(kind, n))),
            V::Str(name) => {
                let found = accounts.find(kind, name);
                if found.is_none() && accounts.registry_base {
                    // The registry base's accounts decide, when the image is built.
                    return Some(Resolved::Deferred(name.to_string()));
                }
                if found.is_none() {
                    self.push(
                        Diag::new(kind.unknown_code(), field.value.span, format!("unknown {noun} `{name}`"))
                            .label(format!("no such {noun} in this image or its bases"))
                            .help(did_you_mean(name, accounts.names(kind)).unwrap_or_else(|| {
                                format!("declare it with `{noun} \"{name}\" {{ {id} = … }}`, or give a numeric {id}")
                            })),
                    );
                }
                found.map(Resolved::Ids)
            }
            _ => {
                self.mismatch(field, key, &format!("a {noun} name or {id}"), None);
                None
            }
        }
    }

    /// The same destination twice, or anything below a file or symlink, is an error.
    fn check_claims(&mut self, claims: &[Claim]) {
        let mut seen: BTreeMap<&str, &Claim> = BTreeMap::new();
        for claim in claims {
            if let Some(first) = seen.get(claim.path.as_str()) {
                self.push(
                    Diag::new(
                        codes::DUPLICATE_DEST,
                        claim.span,
                        format!("`{}` is declared twice in this image", claim.path),
                    )
                    .label("second item at this path")
                    .secondary(first.span, "first one here")
                    .help("each path in an image belongs to one item"),
                );
                continue;
            }
            seen.insert(&claim.path, claim);
        }
        for claim in claims {
            let mut path = claim.path.as_str();
            while let Some((parent, _)) = path.rsplit_once('/') {
                if parent.is_empty() {
                    break;
                }
                if let Some(owner) = seen.get(parent).filter(|c| c.leaf) {
                    self.push(
                        Diag::new(
                            codes::DUPLICATE_DEST,
                            claim.span,
                            format!(
                                "`{}` lies below `{}`, which is a file",
                                claim.path, owner.path
                            ),
                        )
                        .label("inside a file")
                        .secondary(owner.span, "the file is declared here"),
                    );
                    break;
                }
                path = parent;
            }
        }
    }
}

/// A simple syntax check: the composer compiles globs with `globset`.
pub(super) fn glob_problem(glob: &str) -> Option<&'static str> {
    if glob.is_empty() {
        return Some("empty glob");
    }
    if glob.starts_with('/') {
        return Some("globs are relative to the copied directory; remove the leading `/`");
    }
    let mut in_class = false;
    let mut braces = 0usize;
    let mut chars = glob.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.next().is_none() => return Some("dangling `\\` at the end"),
            '[' if !in_class => {
                in_class = true;
                // `[]]` and `[!]]` put `]` in the class.
                if chars.peek() == Some(&'!') || chars.peek() == Some(&'^') {
                    chars.next();
                }
                if chars.peek() == Some(&']') {
                    chars.next();
                }
            }
            ']' if in_class => in_class = false,
            '{' if !in_class => {
                if braces > 0 {
                    return Some("nested `{` alternatives are not supported");
                }
                braces += 1;
            }
            '}' if !in_class => {
                if braces == 0 {
                    return Some("`}` without `{`");
                }
                braces -= 1;
            }
            _ => {}
        }
    }
    if in_class {
        return Some("unclosed `[`");
    }
    if braces > 0 {
        return Some("unclosed `{`");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert_eq!(glob_problem("**/*.html"), None);
        assert_eq!(glob_problem("*.{png,jpg}"), None);
        assert_eq!(glob_problem("[]]x"), None);
        assert_eq!(glob_problem("a\\{b"), None);
        assert!(glob_problem("[abc").is_some());
        assert!(glob_problem("{a,b").is_some());
        assert!(glob_problem("a}").is_some());
        assert!(glob_problem("{a,{b,c}}").is_some());
        assert!(glob_problem("/abs").is_some());
        assert!(glob_problem("").is_some());
        assert!(glob_problem("a\\").is_some());
    }
}
