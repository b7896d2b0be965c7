//! Image settings: the base (`from`), architectures, ports, stop signal, annotations, compression.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    ANNOTATION_FIELDS, Check, KeyKind, TextRule, base_chain, both_set, list_names, quoted,
};
use crate::codes;
use crate::diagnostic::Diag;
use crate::span::Span;
use crate::spec::*;
use crate::suggest::{closest, did_you_mean};
use crate::value::{Field, Record, V};

/// Debian architecture names.
const ARCHITECTURES: &[&str] = &[
    "amd64", "arm64", "armel", "armhf", "i386", "loong64", "mips64el", "ppc64el", "riscv64",
    "s390x",
];

const SIGNALS: &[(&str, u32)] = &[
    ("SIGHUP", 1),
    ("SIGINT", 2),
    ("SIGQUIT", 3),
    ("SIGILL", 4),
    ("SIGTRAP", 5),
    ("SIGABRT", 6),
    ("SIGBUS", 7),
    ("SIGFPE", 8),
    ("SIGKILL", 9),
    ("SIGUSR1", 10),
    ("SIGSEGV", 11),
    ("SIGUSR2", 12),
    ("SIGPIPE", 13),
    ("SIGALRM", 14),
    ("SIGTERM", 15),
    ("SIGSTKFLT", 16),
    ("SIGCHLD", 17),
    ("SIGCONT", 18),
    ("SIGSTOP", 19),
    ("SIGTSTP", 20),
    ("SIGTTIN", 21),
    ("SIGTTOU", 22),
    ("SIGURG", 23),
    ("SIGXCPU", 24),
    ("SIGXFSZ", 25),
    ("SIGVTALRM", 26),
    ("SIGPROF", 27),
    ("SIGWINCH", 28),
    ("SIGIO", 29),
    ("SIGPWR", 30),
    ("SIGSYS", 31),
    ("SIGRTMIN", 34),
    ("SIGRTMAX", 64),
];

/// How many images a `from` chain may hold (keeps every walk over bases shallow).
const MAX_BASE_CHAIN: usize = 64;

impl Check<'_> {
    // ------------------------------------------------------------ base, architectures

    /// `from = "HOST/REPO[:TAG]@sha256:HEX"`: a registry image, pinned by digest.
    pub(super) fn base_reference(&mut self, field: &Field) -> Option<String> {
        let V::Str(reference) = &field.value.kind else {
            return None;
        };
        let problem = match reference.split_once("@sha256:") {
            None => Some("not pinned by digest"),
            Some((_, hex)) if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Some("pinned by a digest that is not 64 hex digits")
            }
            Some((name, _)) if name.chars().any(|c| c.is_ascii_uppercase()) => {
                Some("not lower case")
            }
            Some((name, _))
                if !name.contains('/') || name.starts_with('/') || name.ends_with('/') =>
            {
                Some("not `HOST/REPOSITORY@sha256:…`")
            }
            Some(_) => None,
        };
        match problem {
            None => Some(reference.to_string()),
            Some(problem) => {
                self.push(
                    Diag::new(
                        codes::BAD_BASE_REFERENCE,
                        field.value.span,
                        format!("registry base `{reference}` is {problem}"),
                    )
                    .label("a registry base must name its registry and be pinned by digest")
                    .help("write `HOST/REPOSITORY[:TAG]@sha256:DIGEST` (`skopeo inspect docker://REF` or `himg pull REF` print the digest), or extend an image of this or an imported file: `from = images.base`"),
                );
                None
            }
        }
    }

    /// `publish = "HOST/REPOSITORY[:TAG]"`: a repository, never a digest (the digest is what the
    /// build makes).
    pub(super) fn publish(&mut self, field: &Field) -> Option<String> {
        let reference = self.string(field, "publish")?;
        let path = reference.rsplit_once('/').map(|(_, last)| last);
        let repository = match path.and_then(|last| last.split_once(':')) {
            Some((_, _)) => &reference[..reference.rfind(':').unwrap_or(reference.len())],
            None => reference.as_str(),
        };
        let tag_ok = |t: &str| {
            !t.is_empty()
                && t.len() <= 128
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        };
        let problem = if reference.contains('@') {
            Some("pinned by digest (the build makes the digest)")
        } else if reference.contains("://") {
            Some("a URL (write it without a scheme)")
        } else if repository.chars().any(|c| c.is_ascii_uppercase()) {
            Some("not lower case")
        } else if !repository.contains('/')
            || repository.starts_with('/')
            || repository.ends_with('/')
            || repository.contains("//")
            || repository.chars().any(|c| c.is_whitespace())
        {
            Some("not `HOST/REPOSITORY[:TAG]`")
        } else if repository.len() < reference.len() && !tag_ok(&reference[repository.len() + 1..])
        {
            Some("given a tag that is not 1 to 128 letters, digits, `_`, `.` or `-`")
        } else {
            None
        };
        match problem {
            None => Some(reference),
            Some(problem) => {
                self.push(
                    Diag::new(
                        codes::BAD_PUBLISH,
                        field.value.span,
                        format!("`publish` repository `{reference}` is {problem}"),
                    )
                    .label("where `himg push DIR` sends this image")
                    .help("write `publish = \"HOST/REPOSITORY[:TAG]\"`, e.g. `\"registry.example/platform/base:stable\"`"),
                );
                None
            }
        }
    }

    pub(super) fn base(&mut self, field: &Field) -> Option<ImageSpec> {
        match &field.value.kind {
            V::Image(image) if base_chain(Some(image)).len() >= MAX_BASE_CHAIN => {
                self.push(
                    Diag::new(
                        codes::TOO_DEEP,
                        field.value.span,
                        format!("image `{}` extends too many images", image.name),
                    )
                    .label(format!(
                        "its chain of bases is {MAX_BASE_CHAIN} images long"
                    ))
                    .help("an image may extend at most 63 others, directly or indirectly"),
                );
                None
            }
            V::Image(image) => self
                .embed(
                    crate::syntax::DeclKind::Image,
                    &image.declared_in,
                    &image.name,
                    field.value.span,
                )
                .then(|| (**image).clone()),
            V::Null => None,
            // A registry base: checked by [`Check::base_reference`].
            V::Str(_) => None,
            _ => {
                let mut diag = Diag::new(
                    codes::NOT_AN_IMAGE,
                    field.value.span,
                    format!("`from` must be an image, found {}", field.value.type_name()),
                )
                .label("expected an image")
                .help("images declared earlier are values: `from = images.base` or `from = lib.images.base`");
                if field.value.span.file != field.key_span.file
                    || field.value.span.start < field.key_span.start
                {
                    diag = diag.secondary(field.key_span, "`from` is set here");
                }
                self.push(diag);
                None
            }
        }
    }

    pub(super) fn architectures(
        &mut self,
        list: Option<&Field>,
        single: Option<&Field>,
        base: Option<&ImageSpec>,
    ) -> Vec<String> {
        let mut entries: Vec<(String, Span)> = Vec::new();
        match (list, single) {
            (Some(a), Some(b)) => {
                self.push(
                    both_set(
                        codes::FIELD_CONFLICT,
                        a,
                        b,
                        "`architecture` and `architectures` are both set",
                    )
                    .help("use `architectures = [ … ]` alone"),
                );
            }
            (Some(field), None) => {
                if let V::List(items) = &field.value.kind {
                    for item in &items.items {
                        let f = Field {
                            key_span: field.key_span,
                            value: item.clone(),
                        };
                        if let Some(s) = self.string(&f, "each architecture") {
                            entries.push((s, item.span));
                        }
                    }
                    if items.items.is_empty() {
                        self.push(
                            Diag::new(codes::BAD_ARCHITECTURE, field.value.span, "`architectures` is empty")
                                .label("needs at least one architecture")
                                .help("write e.g. `architectures = [\"amd64\"]`, or leave it out for the default"),
                        );
                    }
                } else {
                    let help = match &field.value.kind {
                        V::Str(s) => Some(format!("use a list: `[{:?}]`", s.to_string())),
                        _ => None,
                    };
                    self.mismatch(field, "architectures", "a list of strings", help);
                }
            }
            (None, Some(field)) => {
                if let Some(s) = self.string(field, "architecture") {
                    entries.push((s, field.value.span));
                }
            }
            (None, None) => {}
        }
        let mut out: Vec<String> = Vec::new();
        for (arch, span) in entries {
            if !ARCHITECTURES.contains(&arch.as_str()) {
                let alias = match arch.as_str() {
                    "x86_64" | "x86-64" | "x64" => Some("amd64"),
                    "aarch64" | "arm64v8" => Some("arm64"),
                    "i686" | "i586" | "x86" | "386" => Some("i386"),
                    "ppc64le" => Some("ppc64el"),
                    "armv7" | "arm" | "armv7l" => Some("armhf"),
                    _ => None,
                };
                let help = alias
                    .map(|a| format!("architectures use Debian's names: `{a}`"))
                    .or_else(|| did_you_mean(&arch, ARCHITECTURES))
                    .unwrap_or_else(|| {
                        format!("known architectures are {}", list_names(ARCHITECTURES))
                    });
                self.push(
                    Diag::new(
                        codes::BAD_ARCHITECTURE,
                        span,
                        format!("unknown architecture `{arch}`"),
                    )
                    .label("unknown architecture")
                    .help(help),
                );
                continue;
            }
            if out.contains(&arch) {
                self.push(
                    Diag::new(
                        codes::BAD_ARCHITECTURE,
                        span,
                        format!("architecture `{arch}` is listed twice"),
                    )
                    .label("repeated"),
                );
                continue;
            }
            if let Some(base) = base
                && !base.architectures.contains(&arch)
            {
                self.push(
                    Diag::new(
                        codes::BAD_ARCHITECTURE,
                        span,
                        format!("base image `{}` is not built for `{arch}`", base.name),
                    )
                    .label("not an architecture of the base")
                    .note(format!(
                        "`{}` is built for {}",
                        base.name,
                        quoted(&base.architectures)
                    )),
                );
                continue;
            }
            out.push(arch);
        }
        if out.is_empty() {
            return match base {
                Some(base) => base.architectures.clone(),
                None => vec!["amd64".to_owned()],
            };
        }
        out
    }

    pub(super) fn ports(&mut self, field: &Field) -> Vec<String> {
        let V::List(list) = &field.value.kind else {
            let help = match &field.value.kind {
                V::Int(n) => Some(format!("use a list: `[{n}]`")),
                V::Str(s) => Some(format!("use a list: `[{:?}]`", s.to_string())),
                _ => None,
            };
            self.mismatch(field, "ports", "a list of ports", help);
            return Vec::new();
        };
        let mut ports: BTreeSet<(u32, String)> = BTreeSet::new();
        for item in &list.items {
            let parsed = match &item.kind {
                V::Int(n) => u32::try_from(*n)
                    .ok()
                    .filter(|p| (1..=65535).contains(p))
                    .map(|p| (p, "tcp".to_owned())),
                V::Str(s) => {
                    let (num, proto) = s.split_once('/').unwrap_or((s, "tcp"));
                    let port = num.parse::<u32>().ok().filter(|p| (1..=65535).contains(p));
                    let proto_ok = matches!(proto, "tcp" | "udp" | "sctp");
                    port.filter(|_| proto_ok && !num.starts_with('+'))
                        .map(|p| (p, proto.to_owned()))
                }
                _ => {
                    let f = Field {
                        key_span: field.key_span,
                        value: item.clone(),
                    };
                    self.mismatch(&f, "each port", "an integer or a string", None);
                    continue;
                }
            };
            match parsed {
                Some(port) => {
                    ports.insert(port);
                }
                None => {
                    let shown = match &item.kind {
                        V::Str(s) => format!("\"{s}\""),
                        V::Int(n) => n.to_string(),
                        _ => String::new(),
                    };
                    self.push(
                        Diag::new(codes::BAD_PORT, item.span, format!("bad port `{shown}`"))
                            .label("not a port")
                            .help("ports are 1 to 65535, optionally with a protocol: `8080`, `\"53/udp\"`, `\"9000/sctp\"`"),
                    );
                }
            }
        }
        ports
            .into_iter()
            .map(|(p, proto)| format!("{p}/{proto}"))
            .collect()
    }

    pub(super) fn volumes(&mut self, field: &Field) -> Vec<String> {
        let Some(list) = self.list_of(field, "volumes") else {
            return Vec::new();
        };
        let mut out: Vec<String> = Vec::new();
        for item in list {
            let f = Field {
                key_span: field.key_span,
                value: item,
            };
            if let Some(path) = self.abs_path(&f, "each volume")
                && !out.contains(&path)
            {
                out.push(path);
            }
        }
        out
    }

    pub(super) fn stop_signal(&mut self, field: &Field) -> Option<String> {
        match &field.value.kind {
            V::Int(n) => {
                if (1..=64).contains(n) {
                    Some(n.to_string())
                } else {
                    self.push(
                        Diag::new(
                            codes::BAD_SIGNAL,
                            field.value.span,
                            format!("bad stop signal {n}"),
                        )
                        .label("signal numbers are 1 to 64"),
                    );
                    None
                }
            }
            V::Str(s) => {
                if is_signal(s) {
                    return Some(s.to_string());
                }
                let upper = s.to_uppercase();
                let candidate = if is_signal(&upper) {
                    Some(upper.clone())
                } else if is_signal(&format!("SIG{upper}")) {
                    Some(format!("SIG{upper}"))
                } else {
                    closest(s, SIGNALS.iter().map(|(n, _)| *n))
                };
                self.push(
                    Diag::new(
                        codes::BAD_SIGNAL,
                        field.value.span,
                        format!("bad stop signal `{s}`"),
                    )
                    .label("not a signal name")
                    .help(match candidate {
                        Some(c) => format!("did you mean `{c}`?"),
                        None => {
                            "write a name like `SIGTERM` or `SIGQUIT`, or a number 1 to 64".into()
                        }
                    }),
                );
                None
            }
            _ => {
                self.mismatch(
                    field,
                    "stop_signal",
                    "a signal name or number",
                    Some("write e.g. `stop_signal = \"SIGTERM\"`".into()),
                );
                None
            }
        }
    }

    pub(super) fn annotations(&mut self, body: &Record) -> BTreeMap<String, String> {
        let mut out: BTreeMap<String, String> = BTreeMap::new();
        let mut from: BTreeMap<String, Span> = BTreeMap::new();
        if let Some(f) = body.fields.get("annotations") {
            if let V::Record(record) = &f.value.kind {
                for (key, field) in &record.fields {
                    from.insert(key.clone(), field.key_span);
                }
            }
            out.extend(
                self.string_record(f, "annotations", KeyKind::Label)
                    .unwrap_or_default(),
            );
        }
        for name in ANNOTATION_FIELDS {
            let Some(field) = body.fields.get(*name) else {
                continue;
            };
            let key = format!("org.opencontainers.image.{name}");
            if let Some(first) = from.get(&key) {
                self.push(
                    Diag::new(
                        codes::FIELD_CONFLICT,
                        field.key_span,
                        format!("annotation `{key}` is set twice"),
                    )
                    .label(format!("`{name}` sets `{key}`"))
                    .secondary(*first, "also set here")
                    .help(format!(
                        "keep either `{name} = …` or the entry in `annotations`"
                    )),
                );
                continue;
            }
            if let Some(value) = self.string(field, name)
                && self.config_text(&value, field.value.span, name, TextRule::Line)
            {
                out.insert(key, value);
            }
        }
        out
    }

    pub(super) fn compression(&mut self, field: &Field) -> Option<Compression> {
        let text = self.string(field, "compression")?;
        match text.as_str() {
            "gzip" => Some(Compression::Gzip),
            "zstd" => Some(Compression::Zstd),
            other => {
                let help = match other {
                    "none" | "uncompressed" | "" => {
                        "layers are always compressed: use `\"gzip\"` or `\"zstd\"`".to_owned()
                    }
                    _ => did_you_mean(other, ["gzip", "zstd"]).unwrap_or_else(|| {
                        "use `\"gzip\"` (most compatible) or `\"zstd\"` (smaller, faster)"
                            .to_owned()
                    }),
                };
                self.push(
                    Diag::new(
                        codes::BAD_COMPRESSION,
                        field.value.span,
                        format!("unsupported compression `{other}`"),
                    )
                    .label("not `gzip` or `zstd`")
                    .help(help),
                );
                None
            }
        }
    }
}

fn is_signal(name: &str) -> bool {
    if SIGNALS.iter().any(|(n, _)| *n == name) {
        return true;
    }
    let offset = |prefix: &str, sep: char| {
        name.strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix(sep))
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| (1..=30).contains(&n))
    };
    offset("SIGRTMIN", '+') || offset("SIGRTMAX", '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert!(is_signal("SIGTERM"));
        assert!(is_signal("SIGRTMIN+3"));
        assert!(is_signal("SIGRTMAX-1"));
        assert!(!is_signal("SIGRTMIN+31"));
        assert!(!is_signal("TERM"));
    }
}
