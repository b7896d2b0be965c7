//! Mirror resolution: `mirror://NAME/path` → a real URL.
//!
//! himg never hard-codes a mirror address. A `.himg` file names a mirror symbolically
//! (`mirror://debian/…`, `mirror://debian-security/…`) and the base URL is looked up, in this
//! order, the first hit winning:
//!
//! 1. the environment variable `HIMG_MIRROR_<NAME>` (NAME upper-cased, `-` and `.` → `_`);
//! 2. the `[mirrors]` table of the himg config file ([`crate::config`]: `$HIMG_CONFIG`, else
//!    `<config dir>/config.toml`) (`[mirrors]\ndebian = "http://…/debian"`);
//! 3. the host's own apt sources (`/etc/apt/sources.list`, `/etc/apt/sources.list.d/*.list` in
//!    one-line style and `*.sources` in deb822 style): an entry whose URI path ends in the
//!    segment `NAME` (`…/debian` → `debian`, `…/debian-security` → `debian-security`).
//!
//! `http://`, `https://` and `file://` URLs pass through unchanged. Everything is read once, when
//! the resolver is built, so a resolver is a plain value that tests construct from explicit inputs
//! with [`MirrorResolver::new`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Why a URL could not be resolved, or the inputs could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// No source knows the mirror name.
    #[error(
        "cannot resolve `mirror://{name}`: tried {tried}\nhint: set {env_var}=https://MIRROR/{name} (or add `{name} = \"…\"` under [mirrors] in the himg config file)"
    )]
    Unresolved {
        /// The mirror name.
        name: String,
        /// What was consulted, in order, and why each failed.
        tried: String,
        /// The environment variable that would resolve it.
        env_var: String,
    },
    /// The URL has a scheme himg does not fetch from.
    #[error("unsupported URL `{url}`: use http://, https://, file:// or mirror://NAME/…")]
    UnsupportedScheme {
        /// The URL as written.
        url: String,
    },
    /// `mirror://` with an empty or odd name.
    #[error("invalid mirror URL `{url}`: {reason}")]
    InvalidMirrorUrl {
        /// The URL as written.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A configured base URL is not http(s) or file.
    #[error(
        "mirror `{name}` from {origin} is `{base}`, which is not an http://, https:// or file:// URL"
    )]
    BadBase {
        /// The mirror name.
        name: String,
        /// Where the value came from.
        origin: String,
        /// The configured value.
        base: String,
    },
    /// The himg config file cannot be read or is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

/// Where a mirror's base URL came from (for messages and `himg doctor`-style output).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MirrorOrigin {
    /// An environment variable (its name).
    Env(String),
    /// The himg config file.
    Config(PathBuf),
    /// A host apt source file.
    AptSource(PathBuf),
}

impl fmt::Display for MirrorOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MirrorOrigin::Env(var) => write!(f, "${var}"),
            MirrorOrigin::Config(path) => write!(f, "config {}", path.display()),
            MirrorOrigin::AptSource(path) => write!(f, "apt source {}", path.display()),
        }
    }
}

/// One `deb` entry of the host's apt sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptSource {
    /// `deb` and/or `deb-src`.
    pub types: Vec<String>,
    /// The repository base URL, without a trailing slash.
    pub uri: String,
    /// Suites (`bookworm`, `bookworm-updates`, …).
    pub suites: Vec<String>,
    /// Components (`main`, …).
    pub components: Vec<String>,
    /// `Signed-By` / `signed-by=` when it names a file.
    pub signed_by: Option<String>,
    /// The file the entry came from.
    pub file: PathBuf,
}

impl AptSource {
    /// The mirror name this source answers to: the last segment of its URI path.
    pub fn mirror_name(&self) -> Option<&str> {
        let after_scheme = self
            .uri
            .split_once("://")
            .map_or(self.uri.as_str(), |x| x.1);
        let path = after_scheme.split_once('/').map(|x| x.1)?;
        path.trim_end_matches('/')
            .rsplit('/')
            .next()
            .filter(|s| !s.is_empty())
    }
}

/// Resolves `mirror://NAME/path` URLs. Build once with [`MirrorResolver::from_env`].
#[derive(Debug, Clone, Default)]
pub struct MirrorResolver {
    /// `HIMG_MIRROR_*` variables.
    env: BTreeMap<String, String>,
    /// The config file consulted (even if it did not exist), for messages.
    config_path: Option<PathBuf>,
    config_exists: bool,
    /// `[mirrors]` of the config file.
    config: BTreeMap<String, String>,
    /// The apt source files that were read, for messages.
    apt_files: Vec<PathBuf>,
    /// Host apt sources, in the order apt reads them.
    apt: Vec<AptSource>,
}

/// The environment variable consulted for a mirror name.
pub fn env_var_for(name: &str) -> String {
    let up: String = name
        .chars()
        .map(|c| match c {
            '-' | '.' => '_',
            c => c.to_ascii_uppercase(),
        })
        .collect();
    format!("HIMG_MIRROR_{up}")
}

impl MirrorResolver {
    /// The resolver for this process: its environment, the default config file and the host's
    /// apt sources under `/`.
    pub fn from_env() -> Result<Self, MirrorError> {
        let loaded = crate::config::load()?;
        Ok(Self::from_config(std::env::vars(), &loaded, Path::new("/")))
    }

    /// A resolver from environment pairs (only `HIMG_MIRROR_*` are used), a config file as
    /// [`crate::config::load`] read it, and the root under which apt sources are read.
    pub fn from_config<I, K, V>(env: I, loaded: &crate::config::Loaded, apt_root: &Path) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let env = env
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .filter(|(k, _): &(String, String)| k.starts_with("HIMG_MIRROR_"))
            .collect();
        let (apt_files, apt) = read_apt_sources(apt_root);
        MirrorResolver {
            env,
            config_path: loaded.paths.file.as_ref().map(|f| f.path.clone()),
            config_exists: loaded.exists,
            config: loaded.config.mirrors.clone(),
            apt_files,
            apt,
        }
    }

    /// A resolver from explicit inputs (for tests): environment pairs (only `HIMG_MIRROR_*` are
    /// used), an optional config file (a missing file counts as empty), and the root under which
    /// `etc/apt/sources.list{,.d}` are read.
    pub fn new<I, K, V>(
        env: I,
        config_file: Option<&Path>,
        apt_root: &Path,
    ) -> Result<Self, MirrorError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let paths = crate::config::Paths {
            file: config_file.map(|p| crate::config::Located {
                path: p.to_path_buf(),
                from_env: crate::config::FILE_ENV,
            }),
            ..Default::default()
        };
        let loaded = crate::config::load_from(paths)?;
        Ok(Self::from_config(env, &loaded, apt_root))
    }

    /// The host apt sources that were found (e.g. to find the host's suite).
    pub fn host_sources(&self) -> &[AptSource] {
        &self.apt
    }

    /// The base URL (no trailing slash) of mirror `name` and where it came from.
    pub fn base(&self, name: &str) -> Result<(String, MirrorOrigin), MirrorError> {
        let var = env_var_for(name);
        let mut tried = Vec::new();
        if let Some(v) = self.env.get(&var).filter(|v| !v.trim().is_empty()) {
            return checked_base(name, v, MirrorOrigin::Env(var));
        }
        tried.push(format!("${var} (unset)"));
        match &self.config_path {
            Some(path) if self.config_exists => {
                if let Some(v) = self.config.get(name) {
                    return checked_base(name, v, MirrorOrigin::Config(path.clone()));
                }
                tried.push(format!("[mirrors] in {} (no `{name}` key)", path.display()));
            }
            Some(path) => tried.push(format!("config {} (no such file)", path.display())),
            None => tried.push("config file (no $HIMG_CONFIG, $XDG_CONFIG_HOME or $HOME)".into()),
        }
        for src in &self.apt {
            if src.mirror_name() == Some(name) && is_fetchable(&src.uri) {
                return Ok((src.uri.clone(), MirrorOrigin::AptSource(src.file.clone())));
            }
        }
        if self.apt_files.is_empty() {
            tried.push("host apt sources (none found)".into());
        } else {
            let files: Vec<String> = self
                .apt_files
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            tried.push(format!(
                "host apt sources {} (no http(s) URI whose path ends in `/{name}`)",
                files.join(", ")
            ));
        }
        Err(MirrorError::Unresolved {
            name: name.to_string(),
            tried: tried.join(", "),
            env_var: var,
        })
    }

    /// Turns `mirror://NAME/path` into `BASE/path`; passes http(s):// and file:// through.
    pub fn resolve(&self, url: &str) -> Result<String, MirrorError> {
        if let Some(rest) = url.strip_prefix("mirror://") {
            let (name, path) = rest.split_once('/').unwrap_or((rest, ""));
            if name.is_empty() {
                return Err(MirrorError::InvalidMirrorUrl {
                    url: url.to_string(),
                    reason: "the mirror name is empty",
                });
            }
            if !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            {
                return Err(MirrorError::InvalidMirrorUrl {
                    url: url.to_string(),
                    reason: "a mirror name has only letters, digits, `-`, `_` and `.`",
                });
            }
            if path.split('/').any(|seg| seg == "..") {
                return Err(MirrorError::InvalidMirrorUrl {
                    url: url.to_string(),
                    reason: "the path must not contain `..`",
                });
            }
            let (base, _) = self.base(name)?;
            let path = path.trim_start_matches('/');
            return Ok(if path.is_empty() {
                base
            } else {
                format!("{base}/{path}")
            });
        }
        if is_fetchable(url) {
            return Ok(url.to_string());
        }
        Err(MirrorError::UnsupportedScheme {
            url: url.to_string(),
        })
    }
}

fn is_fetchable(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    ["http://", "https://", "file://"]
        .iter()
        .any(|p| lower.starts_with(p))
}

fn checked_base(
    name: &str,
    value: &str,
    origin: MirrorOrigin,
) -> Result<(String, MirrorOrigin), MirrorError> {
    let v = value.trim().trim_end_matches('/');
    if !is_fetchable(v) {
        return Err(MirrorError::BadBase {
            name: name.to_string(),
            origin: origin.to_string(),
            base: value.to_string(),
        });
    }
    Ok((v.to_string(), origin))
}

/// Reads `etc/apt/sources.list` and `etc/apt/sources.list.d/*.{list,sources}` under `root`, in
/// apt's order (the main file, then the directory sorted by name). Unreadable files are skipped:
/// they only feed a fallback. Returns the files read and the `deb`/`deb-src` entries.
pub fn read_apt_sources(root: &Path) -> (Vec<PathBuf>, Vec<AptSource>) {
    let mut files = Vec::new();
    let mut out = Vec::new();
    let main = root.join("etc/apt/sources.list");
    if let Ok(text) = std::fs::read_to_string(&main) {
        out.extend(parse_one_line_sources(&text, &main));
        files.push(main);
    }
    let dir = root.join("etc/apt/sources.list.d");
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    entries.sort();
    for path in entries {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let parse: fn(&str, &Path) -> Vec<AptSource> = match ext {
            "list" => parse_one_line_sources,
            "sources" => parse_deb822_sources,
            _ => continue,
        };
        if let Ok(text) = std::fs::read_to_string(&path) {
            out.extend(parse(&text, &path));
            files.push(path);
        }
    }
    (files, out)
}

/// Parses one-line style: `deb [opt=val …] URI SUITE [COMPONENT…]`.
pub fn parse_one_line_sources(text: &str, file: &Path) -> Vec<AptSource> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let (ty, rest) = match line.split_once(char::is_whitespace) {
            Some(x) => x,
            None => continue,
        };
        if ty != "deb" && ty != "deb-src" {
            continue;
        }
        let mut rest = rest.trim_start();
        let mut signed_by = None;
        if let Some(after) = rest.strip_prefix('[') {
            let Some((opts, tail)) = after.split_once(']') else {
                continue;
            };
            for opt in opts.split_whitespace() {
                if let Some(v) = opt.strip_prefix("signed-by=") {
                    signed_by = Some(v.to_string());
                }
            }
            rest = tail.trim_start();
        }
        let mut words = rest.split_whitespace();
        let (Some(uri), Some(suite)) = (words.next(), words.next()) else {
            continue;
        };
        out.push(AptSource {
            types: vec![ty.to_string()],
            uri: uri.trim_end_matches('/').to_string(),
            suites: vec![suite.to_string()],
            components: words.map(str::to_string).collect(),
            signed_by,
            file: file.to_path_buf(),
        });
    }
    out
}

/// Parses deb822 style (`Types:`, `URIs:`, `Suites:`, `Components:`, `Signed-By:`, `Enabled:`),
/// one source per URI.
pub fn parse_deb822_sources(text: &str, file: &Path) -> Vec<AptSource> {
    let mut out = Vec::new();
    for stanza in deb822_stanzas(text) {
        let get = |k: &str| {
            stanza
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.as_str())
        };
        if get("Enabled").is_some_and(|v| v.trim().eq_ignore_ascii_case("no")) {
            continue;
        }
        let words = |k: &str| -> Vec<String> {
            get(k)
                .map(|v| v.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default()
        };
        let types: Vec<String> = words("Types")
            .into_iter()
            .filter(|t| t == "deb" || t == "deb-src")
            .collect();
        if types.is_empty() {
            continue;
        }
        // Signed-By may embed a whole key block; only a file path is worth keeping.
        let signed_by = get("Signed-By")
            .map(str::trim)
            .filter(|v| !v.contains('\n') && !v.is_empty())
            .map(str::to_string);
        for uri in words("URIs") {
            out.push(AptSource {
                types: types.clone(),
                uri: uri.trim_end_matches('/').to_string(),
                suites: words("Suites"),
                components: words("Components"),
                signed_by: signed_by.clone(),
                file: file.to_path_buf(),
            });
        }
    }
    out
}

/// Splits deb822 text into stanzas of (field, value); continuation lines are joined with `\n`,
/// `#` comment lines are dropped.
fn deb822_stanzas(text: &str) -> Vec<Vec<(String, String)>> {
    let mut stanzas = Vec::new();
    let mut cur: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                stanzas.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = cur.last_mut() {
                v.push('\n');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            cur.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    if !cur.is_empty() {
        stanzas.push(cur);
    }
    stanzas
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_name_is_last_path_segment() {
        let s = |uri: &str| AptSource {
            types: vec!["deb".into()],
            uri: uri.into(),
            suites: vec![],
            components: vec![],
            signed_by: None,
            file: PathBuf::new(),
        };
        assert_eq!(s("http://h/debian").mirror_name(), Some("debian"));
        assert_eq!(
            s("http://h/a/debian-security/").mirror_name(),
            Some("debian-security")
        );
        assert_eq!(s("http://h").mirror_name(), None);
        assert_eq!(s("http://h/").mirror_name(), None);
    }

    #[test]
    fn env_var_name() {
        assert_eq!(
            env_var_for("debian-security"),
            "HIMG_MIRROR_DEBIAN_SECURITY"
        );
        assert_eq!(env_var_for("ports.x"), "HIMG_MIRROR_PORTS_X");
    }

    #[test]
    fn one_line_with_options_and_comments() {
        let text = "# c\ndeb [arch=amd64 signed-by=/k.gpg] http://h/debian bookworm main contrib # tail\n\
                    deb-src http://h/debian bookworm main\nrpm http://x y\ndeb cdrom:[x]/ y z\n";
        let v = parse_one_line_sources(text, Path::new("f"));
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].uri, "http://h/debian");
        assert_eq!(v[0].suites, vec!["bookworm"]);
        assert_eq!(v[0].components, vec!["main", "contrib"]);
        assert_eq!(v[0].signed_by.as_deref(), Some("/k.gpg"));
        assert_eq!(v[1].types, vec!["deb-src"]);
    }

    #[test]
    fn deb822_multi_uri_disabled_and_embedded_key() {
        let text = "Types: deb deb-src\nURIs: http://a/debian http://b/debian\nSuites: trixie trixie-updates\n\
                    Components: main\nSigned-By: /usr/share/keyrings/x.gpg\n\n\
                    # comment\nTypes: deb\nURIs: http://c/other\nSuites: s\nEnabled: no\n\n\
                    Types: deb\nURIs: http://d/debian-security\nSuites: trixie-security\nComponents: main\n\
                    Signed-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n abc\n";
        let v = parse_deb822_sources(text, Path::new("f"));
        assert_eq!(v.len(), 3);
        assert_eq!(v[1].uri, "http://b/debian");
        assert_eq!(v[0].suites, vec!["trixie", "trixie-updates"]);
        assert_eq!(v[2].mirror_name(), Some("debian-security"));
        assert_eq!(v[2].signed_by, None);
    }
}
