//! Debian packages of an image: `repository` blocks and the `packages` list (`!name` excludes), plus
//! `keep_docs` and `locales`. Names and constraints are checked for syntax here; resolving them against
//! repository indexes is the composer's job.

use super::{Check, base_chain, both_set};
use crate::codes;
use crate::diagnostic::Diag;
use crate::loader::EntryKind;
use crate::span::Span;
use crate::spec::*;
use crate::value::{Field, Record, V};

/// Fields of a `repository` block.
pub(crate) const REPOSITORY_FIELDS: &[&str] =
    &["name", "url", "suites", "suite", "components", "keyring"];

/// Relations of a version constraint; two-character ones first so `<=` is not read as `=`.
const OPERATORS: &[&str] = &["<<", "<=", ">=", ">>", "="];

const CONSTRAINT_SHAPE: &str = "expected `(RELATION VERSION)` with <<, <=, =, >= or >>";

/// A Debian package name (policy 5.6.1), optionally with `:arch`.
fn package_name_problem(name: &str) -> Option<&'static str> {
    let (base, arch) = match name.split_once(':') {
        Some((n, a)) => (n, Some(a)),
        None => (name, None),
    };
    let mut chars = base.chars();
    match chars.next() {
        None => return Some("a package name cannot be empty"),
        Some(c) if !(c.is_ascii_lowercase() || c.is_ascii_digit()) => {
            return Some("a package name starts with a lowercase letter or a digit");
        }
        _ => {}
    }
    if base.len() < 2 {
        return Some("a package name has at least two characters");
    }
    if !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c)) {
        return Some("a package name holds only lowercase letters, digits, `+`, `-` and `.`");
    }
    let arch_ok = |arch: &str| {
        !arch.is_empty()
            && arch
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    if arch.is_some_and(|a| !arch_ok(a)) {
        return Some("an architecture qualifier is written `:amd64`, in lowercase");
    }
    None
}

/// A Debian version (policy 5.6.12): `[epoch:]upstream[-revision]`.
fn version_problem(version: &str) -> Option<&'static str> {
    if version.is_empty() {
        return Some("the version is empty");
    }
    if !version.starts_with(|c: char| c.is_ascii_digit()) {
        return Some("a version starts with a digit");
    }
    if !version
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || ".+~-:".contains(c))
    {
        return Some("a version holds only letters, digits, `.`, `+`, `~`, `-` and `:`");
    }
    None
}

/// What follows the name in a package request.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rest<'a> {
    /// A bare name.
    Nothing,
    /// `name (op version)`: the text after `(`.
    Constraint(&'a str),
    /// `name=version`: the text after `=`.
    Pin(&'a str),
}

/// Splits a trimmed `name`, `name (op version)` or `name=version` into the name and the rest.
fn split_request(text: &str) -> (&str, Rest<'_>) {
    if let Some((name, rest)) = text.split_once('(') {
        return (name.trim(), Rest::Constraint(rest));
    }
    if let Some((name, version)) = text.split_once('=') {
        return (name.trim(), Rest::Pin(version));
    }
    (text, Rest::Nothing)
}

/// The canonical text of what follows the name (`" (>= 1.2)"`, `"=1.2-1"` or `""`), or what is wrong.
fn canonical_rest(rest: Rest<'_>) -> Result<String, &'static str> {
    match rest {
        Rest::Nothing => Ok(String::new()),
        Rest::Constraint(text) => {
            let inner = text.trim_end().strip_suffix(')').ok_or(CONSTRAINT_SHAPE)?;
            let inner = inner.trim();
            let op = OPERATORS
                .iter()
                .find(|op| inner.starts_with(**op))
                .ok_or(CONSTRAINT_SHAPE)?;
            let version = inner[op.len()..].trim();
            match version_problem(version) {
                Some(problem) => Err(problem),
                None => Ok(format!(" ({op} {version})")),
            }
        }
        Rest::Pin(version) => {
            let version = version.trim();
            if version.is_empty() {
                return Err("`name=` needs a version after `=`");
            }
            match version_problem(version) {
                Some(problem) => Err(problem),
                None => Ok(format!("={version}")),
            }
        }
    }
}

/// Where a `mirror://`, `http(s)://` or `file://` URL goes wrong, ignoring credentials (checked apart).
fn url_problem(url: &str) -> Option<&'static str> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Some("not a URL");
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    match scheme {
        "mirror" => {
            let valid = !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            (!valid).then_some("`mirror://NAME` needs a name of letters, digits, `_` and `-`")
        }
        "http" | "https" => host.is_empty().then_some("the URL has no host"),
        "file" => (!rest.starts_with('/'))
            .then_some("a `file://` URL names an absolute path: `file:///srv/debian`"),
        _ => Some("unsupported URL scheme"),
    }
}

/// Whether the authority part of a URL holds a user or password (`user:pw@host`).
fn has_credentials(url: &str) -> bool {
    url.split_once("://").is_some_and(|(_, rest)| {
        rest.split(['/', '?', '#'])
            .next()
            .is_some_and(|authority| authority.contains('@'))
    })
}

impl Check<'_> {
    /// The image's packages, or `None` when it declares neither packages nor repositories.
    pub(super) fn packages(
        &mut self,
        body: &Record,
        base: Option<&ImageSpec>,
    ) -> Option<PackagesSpec> {
        let get = |key: &str| body.fields.get(key);
        let mut repositories: Vec<(RepositorySpec, Span)> = Vec::new();
        // Repositories declared but invalid have been reported: no "without a repository" then.
        let mut declared = false;
        if let (Some(a), Some(b)) = (get("repository"), get("repositories")) {
            self.push(
                both_set(
                    codes::FIELD_CONFLICT,
                    a,
                    b,
                    "`repository` blocks and `repositories` are both set",
                )
                .help("declare the repositories either as `repository \"…\" { … }` blocks or as one `repositories = [ … ]` list, in priority order"),
            );
        }
        for key in ["repository", "repositories"] {
            let Some(f) = get(key) else { continue };
            for value in self.records(f, key) {
                let V::Record(record) = &value.kind else {
                    continue;
                };
                declared = true;
                let Some((repo, name_span)) = self.repository(record, value.span) else {
                    continue;
                };
                if let Some((_, first)) = repositories.iter().find(|(r, _)| r.name == repo.name) {
                    self.push(
                        Diag::new(
                            codes::DUPLICATE_KEY,
                            name_span,
                            format!("repository `{}` is declared twice", repo.name),
                        )
                        .label("second declaration")
                        .secondary(*first, "first declared here"),
                    );
                    continue;
                }
                repositories.push((repo, name_span));
            }
        }
        let mut repositories: Vec<RepositorySpec> =
            repositories.into_iter().map(|(r, _)| r).collect();

        let packages_field = get("packages");
        let mut install: Vec<(String, String, Span)> = Vec::new(); // (name, request, span)
        let mut exclude: Vec<(String, Span)> = Vec::new();
        if let Some(f) = packages_field {
            let items = self.string_list(f, "packages").unwrap_or_default();
            let spans: Vec<_> = match &f.value.kind {
                V::List(list) => list.items.iter().map(|v| v.span).collect(),
                _ => Vec::new(),
            };
            for (item, span) in items.iter().zip(spans) {
                self.package(item, span, &mut install, &mut exclude);
            }
        }
        for (name, span) in &exclude {
            let requested = install.iter().find(|(n, _, _)| {
                n == name || (!name.contains(':') && n.split(':').next() == Some(name.as_str()))
            });
            if let Some((_, request, first)) = requested {
                self.push(
                    Diag::new(
                        codes::BAD_PACKAGE,
                        *span,
                        format!("`{name}` is both requested and excluded"),
                    )
                    .label("excluded here")
                    .secondary(*first, format!("`{request}` requested here"))
                    .help("remove the request or the exclusion"),
                );
            }
        }

        let keep_docs = get("keep_docs").and_then(|f| self.bool(f, "keep_docs"));
        let locales = get("locales").and_then(|f| self.names(f, "locales", "locale"));
        let path_exclude = get("path_exclude").and_then(|f| self.path_globs(f, "path_exclude"));
        let path_include = get("path_include").and_then(|f| self.path_globs(f, "path_include"));
        let keep_setuid = get("keep_setuid").and_then(|f| self.keep_setuid(f));
        let alternatives = get("alternatives").and_then(|f| self.alternatives(f));
        if packages_field.is_none() {
            for key in [
                "keep_docs",
                "locales",
                "path_exclude",
                "path_include",
                "keep_setuid",
                "alternatives",
            ] {
                if let Some(f) = get(key) {
                    self.push(
                        Diag::new(
                            codes::FIELD_CONFLICT,
                            f.key_span,
                            format!("`{key}` without `packages`"),
                        )
                        .label("has no effect")
                        .help("`keep_docs`, `locales`, `path_exclude`, `path_include`, `keep_setuid` and `alternatives` apply to the Debian packages this image installs"),
                    );
                }
            }
            if !declared {
                return None;
            }
        }

        if repositories.is_empty() && !declared {
            // The nearest base that has packages carries the repositories it resolved (its own or
            // inherited), so the first one along the chain is the one to inherit.
            match base_chain(base)
                .into_iter()
                .find_map(|b| b.packages.as_ref())
            {
                Some(p) => repositories = p.repositories.clone(),
                None => {
                    if let Some(f) = packages_field {
                        self.push(
                            Diag::new(
                                codes::NO_REPOSITORY,
                                f.key_span,
                                "`packages` without a repository",
                            )
                            .label("nothing to install these from")
                            .help("add a `repository \"debian\" { url = \"mirror://debian\", suites = [\"trixie\"], keyring = \"…\" }` block, or derive `from` an image that has one"),
                        );
                    }
                }
            }
        }
        let mut exclude: Vec<String> = exclude.into_iter().map(|(n, _)| n).collect();
        // Exclusions are inherited along the `from` chain, as the base's layers never hold what it
        // excluded: a product that needs the package again requests it, and its request wins.
        for inherited in base_chain(base)
            .into_iter()
            .filter_map(|b| b.packages.as_ref())
            .flat_map(|p| p.exclude.iter())
        {
            let requested = install.iter().any(|(n, _, _)| {
                n == inherited
                    || (!inherited.contains(':') && n.split(':').next() == Some(inherited.as_str()))
            });
            if !requested {
                exclude.push(inherited.clone());
            }
        }
        exclude.sort();
        exclude.dedup();
        Some(PackagesSpec {
            repositories,
            install: install.into_iter().map(|(_, request, _)| request).collect(),
            exclude,
            keep_docs: keep_docs.unwrap_or(false),
            locales: locales.unwrap_or_else(|| vec!["C.UTF-8".to_string()]),
            path_exclude: path_exclude.unwrap_or_default(),
            path_include: path_include.unwrap_or_default(),
            keep_setuid: keep_setuid.unwrap_or_default(),
            alternatives: alternatives.unwrap_or_default(),
        })
    }

    /// `alternatives = { NAME = "/abs/path" }`: names as `update-alternatives` spells them,
    /// values absolute, normalised paths.
    fn alternatives(
        &mut self,
        field: &Field,
    ) -> Option<std::collections::BTreeMap<String, String>> {
        let pairs = self.string_record(field, "alternatives", super::KeyKind::Label)?;
        let spans: std::collections::BTreeMap<String, Span> = match &field.value.kind {
            V::Record(record) => record
                .fields
                .iter()
                .map(|(k, f)| (k.clone(), f.value.span))
                .collect(),
            _ => Default::default(),
        };
        let mut ok = true;
        let mut out = std::collections::BTreeMap::new();
        for (name, path) in pairs {
            let span = spans.get(&name).copied().unwrap_or(field.value.span);
            let good_name = name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric())
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-'));
            if !good_name {
                ok = false;
                self.push(
                    Diag::new(
                        codes::BAD_PATH,
                        span,
                        format!("`{name}` is not an alternative's name"),
                    )
                    .label("letters, digits, `.`, `_`, `+` and `-` only")
                    .help("name the link group as `update-alternatives --display NAME` does: `alternatives = { java = \"/usr/lib/jvm/java-21-openjdk-amd64/bin/java\" }`"),
                );
                continue;
            }
            match self.normalize_abs(&path, span, "alternatives") {
                Some(p) => {
                    out.insert(name, p);
                }
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// `keep_setuid`: exact absolute paths of package files that keep their setuid/setgid bits
    /// (normalised, sorted, unique). Globs are refused: each privilege is named.
    fn keep_setuid(&mut self, field: &Field) -> Option<Vec<String>> {
        let items = self.string_list(field, "keep_setuid")?;
        let values = match &field.value.kind {
            V::List(list) => list.items.clone(),
            _ => Vec::new(),
        };
        let mut ok = true;
        let mut paths = Vec::new();
        for (text, value) in items.iter().zip(&values) {
            if text.contains(['*', '?', '[', '{']) {
                ok = false;
                self.push(
                    Diag::new(
                        codes::BAD_PATH,
                        value.span,
                        format!("`keep_setuid` names `{text}`, a glob"),
                    )
                    .label("not an exact path")
                    .help("name each file that keeps its setuid/setgid bits: `keep_setuid = [\"/usr/bin/su\"]`"),
                );
                continue;
            }
            match self.normalize_abs(text, value.span, "keep_setuid") {
                Some(p) => paths.push(p),
                None => ok = false,
            }
        }
        paths.sort();
        paths.dedup();
        ok.then_some(paths)
    }

    /// A list of absolute path globs (`path_exclude`, `path_include`), each checked for syntax.
    fn path_globs(&mut self, field: &Field, name: &str) -> Option<Vec<String>> {
        let items = self.string_list(field, name)?;
        let values = match &field.value.kind {
            V::List(list) => list.items.clone(),
            _ => Vec::new(),
        };
        let mut ok = true;
        for (glob, value) in items.iter().zip(&values) {
            let problem = match glob.strip_prefix('/') {
                None => Some("not absolute; paths in packages start with `/`"),
                Some(rest) => super::content::glob_problem(rest),
            };
            if let Some(problem) = problem {
                ok = false;
                self.push(
                    Diag::new(codes::BAD_GLOB, value.span, format!("bad path glob `{glob}`"))
                        .label(problem)
                        .help("path globs are absolute (`/usr/lib/*/gconv/*`); `*` also matches `/`, as in dpkg's `path-exclude`"),
                );
            }
        }
        let mut items = items;
        items.sort();
        items.dedup();
        ok.then_some(items)
    }

    /// One item of `packages`: a request (added to `install` in canonical form) or a `!name`
    /// exclusion (added to `exclude`).
    fn package(
        &mut self,
        item: &str,
        span: Span,
        install: &mut Vec<(String, String, Span)>,
        exclude: &mut Vec<(String, Span)>,
    ) {
        let (negated, text) = match item.trim().strip_prefix('!') {
            Some(rest) => (true, rest.trim()),
            None => (false, item.trim()),
        };
        let (name, rest) = split_request(text);
        if let Some(problem) = package_name_problem(name) {
            let lower = name.to_ascii_lowercase();
            let help = if lower != name && package_name_problem(&lower).is_none() {
                format!("package names are lowercase: `{lower}`")
            } else {
                "write `\"python3\"`, `\"python3 (>= 3.11)\"`, `\"python3=3.11.2-1\"`, or `\"!perl-base\"` to exclude".to_owned()
            };
            self.push(
                Diag::new(
                    codes::BAD_PACKAGE,
                    span,
                    format!("`{item}` is not a valid package name"),
                )
                .label(problem)
                .help(help),
            );
            return;
        }
        if negated {
            if rest != Rest::Nothing {
                self.push(
                    Diag::new(
                        codes::BAD_PACKAGE,
                        span,
                        format!("an exclusion takes a bare name, found `{item}`"),
                    )
                    .label("no version in an exclusion")
                    .help(format!("write `\"!{name}\"`")),
                );
                return;
            }
            exclude.push((name.to_owned(), span));
            return;
        }
        match canonical_rest(rest) {
            Ok(rest) => install.push((name.to_owned(), format!("{name}{rest}"), span)),
            Err(problem) => self.push(
                Diag::new(
                    codes::BAD_PACKAGE,
                    span,
                    format!("bad version constraint in `{item}`"),
                )
                .label(problem)
                .help("write `\"name (>= 1.2)\"` or `\"name=1.2-1\"`"),
            ),
        }
    }

    /// A list of names (suites, components, locales), each checked by [`Check::name_ok`].
    fn names(&mut self, field: &Field, name: &str, what: &str) -> Option<Vec<String>> {
        let items = self.string_list(field, name)?;
        let V::List(list) = &field.value.kind else {
            return Some(items);
        };
        let mut ok = true;
        for (item, value) in items.iter().zip(&list.items) {
            ok &= self.name_ok(item, value.span, name, what);
        }
        ok.then_some(items)
    }

    /// A suite, component or locale: non-empty, without white space (and for a locale without `/`).
    fn name_ok(&mut self, item: &str, span: Span, name: &str, what: &str) -> bool {
        let valid = !item.is_empty()
            && !item
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || (what == "locale" && c == '/'));
        if !valid {
            self.push(
                Diag::new(
                    codes::BAD_VALUE,
                    span,
                    format!("invalid {what} `{item}` in `{name}`"),
                )
                .label(format!("a {what} is a non-empty name without spaces")),
            );
        }
        valid
    }

    /// One repository record, with the span of its name.
    fn repository(&mut self, record: &Record, span: Span) -> Option<(RepositorySpec, Span)> {
        self.unknown_fields(record, REPOSITORY_FIELDS, "a repository", false);
        let get = |key: &str| record.fields.get(key);
        let name_field = self.required(record, span, "name", "a repository");
        let name = name_field.and_then(|f| self.repository_name(f));
        let url_field = self.required(record, span, "url", "a repository");
        let url = url_field.and_then(|f| self.string(f, "url"));
        if let (Some(url), Some(f)) = (&url, url_field) {
            if has_credentials(url) {
                self.push(
                    Diag::new(
                        codes::BAD_REPOSITORY_URL,
                        f.value.span,
                        "credentials do not belong in a .himg file",
                    )
                    .label("user or password in the URL")
                    .help("put them in the auth file (`$HIMG_AUTH_FILE` or ~/.config/himg/auth.conf); see the book"),
                );
            }
            if let Some(problem) = url_problem(url) {
                self.push(
                    Diag::new(
                        codes::BAD_REPOSITORY_URL,
                        f.value.span,
                        format!("`{url}` is not a repository URL"),
                    )
                    .label(problem)
                    .help("use `mirror://debian` (resolved from HIMG_MIRROR_DEBIAN, the himg config or the host's apt sources), `http(s)://…` or `file://…`"),
                );
            }
        }
        let suites = match (get("suites"), get("suite")) {
            (Some(f), None) => self.names(f, "suites", "suite"),
            (None, Some(f)) => self
                .string(f, "suite")
                .filter(|s| self.name_ok(s, f.value.span, "suite", "suite"))
                .map(|s| vec![s]),
            (Some(a), Some(b)) => {
                self.push(
                    both_set(
                        codes::FIELD_CONFLICT,
                        a,
                        b,
                        "`suite` and `suites` are both set",
                    )
                    .help("use `suites = [ … ]` alone"),
                );
                None
            }
            (None, None) => {
                self.required(record, span, "suites", "a repository");
                None
            }
        };
        if let (Some(s), Some(f)) = (&suites, get("suites"))
            && s.is_empty()
        {
            self.push(
                Diag::new(codes::OUT_OF_RANGE, f.value.span, "`suites` is empty")
                    .label("name at least one suite, e.g. `[\"trixie\"]`"),
            );
        }
        let components = match get("components") {
            Some(f) => {
                let components = self.names(f, "components", "component");
                if components.as_ref().is_some_and(Vec::is_empty) {
                    self.push(
                        Diag::new(codes::OUT_OF_RANGE, f.value.span, "`components` is empty")
                            .label("name at least one component, or leave `components` out for `[\"main\"]`"),
                    );
                }
                components
            }
            None => Some(vec!["main".to_string()]),
        };
        let keyring = self
            .required(record, span, "keyring", "a repository")
            .and_then(|f| self.keyring(f));
        let name_span = name_field.map(|f| f.value.span)?;
        Some((
            RepositorySpec {
                name: name?,
                url: url?,
                suites: suites?,
                components: components?,
                keyring: keyring?,
            },
            name_span,
        ))
    }

    /// A repository name: letters, digits, `.`, `_` and `-`.
    fn repository_name(&mut self, field: &Field) -> Option<String> {
        let name = self.string(field, "name")?;
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if !valid {
            self.push(
                Diag::new(
                    codes::BAD_VALUE,
                    field.value.span,
                    format!("invalid repository name `{name}`"),
                )
                .label("not a valid repository name")
                .help("repository names are 1 to 64 letters, digits, `.`, `_` or `-`"),
            );
            return None;
        }
        Some(name)
    }

    /// A keyring file, relative to the declaring file, which must exist.
    fn keyring(&mut self, field: &Field) -> Option<SourcePath> {
        let (text, path, kind) = self.project_file(field, "keyring", "keyring", |_| {
            "copy the keyring next to your .himg file (for Debian: from /usr/share/keyrings/) and name it relative to the file; builds stay hermetic".to_owned()
        })?;
        let what = match kind {
            EntryKind::File { .. } => return Some(path),
            EntryKind::Dir => "a directory",
            EntryKind::Symlink => "a symlink",
        };
        self.push(
            Diag::new(
                codes::MISSING_SOURCE,
                field.value.span,
                format!("keyring `{text}` is not a regular file"),
            )
            .label(format!("`{path}` is {what}"))
            .help("name the keyring file itself; copy it into the project rather than linking to it, so builds stay hermetic"),
        );
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(text: &str) -> Result<String, &'static str> {
        let (name, rest) = split_request(text);
        if let Some(problem) = package_name_problem(name) {
            return Err(problem);
        }
        canonical_rest(rest).map(|rest| format!("{name}{rest}"))
    }

    #[test]
    fn requests() {
        assert_eq!(request("python3"), Ok("python3".into()));
        assert_eq!(request("python3 (>= 3.11)"), Ok("python3 (>= 3.11)".into()));
        assert_eq!(request("python3(>=3.11)"), Ok("python3 (>= 3.11)".into()));
        assert_eq!(
            request("libc6 (<< 1:2.41-12~)"),
            Ok("libc6 (<< 1:2.41-12~)".into())
        );
        assert_eq!(request("libc6=2.41-12"), Ok("libc6=2.41-12".into()));
        assert_eq!(
            request("libc6:arm64 (= 2.41)"),
            Ok("libc6:arm64 (= 2.41)".into())
        );
        assert_eq!(request("g++"), Ok("g++".into()));
        for bad in [
            "Python3",
            "p",
            "py_thon",
            "",
            "libc6:",
            "libc6:ARM64",
            "python3 (~ 3)",
            "python3 (>= 3",
            "python3 (>=)",
            "python3 (=> 3)",
            "python3 (< 3)",
            "python3 (>= 3) x",
            "python3 (>= v3)",
            "python3=",
            "python3=3 4",
        ] {
            assert!(request(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn urls() {
        for good in [
            "mirror://debian",
            "mirror://debian-security/",
            "https://deb.example.invalid/debian",
            "http://[::1]:8080/debian",
            "file:///srv/debian",
        ] {
            assert_eq!(url_problem(good), None, "{good}");
            assert!(!has_credentials(good), "{good}");
        }
        for bad in [
            "ftp://x/debian",
            "debian",
            "https:///debian",
            "file://debian",
            "mirror://",
        ] {
            assert!(url_problem(bad).is_some(), "{bad}");
        }
        assert!(has_credentials("https://user:pw@repo.invalid/debian"));
        assert!(has_credentials("mirror://token@debian"));
        assert!(!has_credentials("https://repo.invalid/debian@2024"));
    }
}
