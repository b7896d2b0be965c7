//! The one himg configuration file: where it is, and its typed tables (`[mirrors]`,
//! `[registries]`, `[cache]`, `[keys]`, `[promote]`). Every reader goes through [`load`].
//!
//! The file is `$HIMG_CONFIG`, else `$HIMG_CONFIG_DIR/config.toml`, else
//! `$XDG_CONFIG_HOME/himg/config.toml`, else `$HOME/.config/himg/config.toml`. The config
//! directory (which holds `keys/`) is `$HIMG_CONFIG_DIR`, else `$XDG_CONFIG_HOME/himg`, else
//! `$HOME/.config/himg`: `HIMG_CONFIG` names the file only, and never moves the keys.
//!
//! A file named by `$HIMG_CONFIG` must exist; the default one is optional. An unknown table or
//! key is refused, naming the file and the key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The variable naming the config file.
pub const FILE_ENV: &str = "HIMG_CONFIG";
/// The variable naming the config directory (the default file's and `keys/`'s home).
pub const DIR_ENV: &str = "HIMG_CONFIG_DIR";

/// Why the config file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file exists (or was named by `$HIMG_CONFIG`) but cannot be read.
    #[error("cannot read himg config {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A table or key himg does not know.
    #[error("himg config {}: unknown key `{key}` (line {line}); known: {known}", path.display())]
    UnknownKey {
        path: PathBuf,
        /// The dotted key, e.g. `cache.sign_key`.
        key: String,
        line: usize,
        /// The keys allowed there.
        known: String,
    },
    /// Not TOML, or a value of the wrong type.
    #[error("invalid himg config {}: {message}", path.display())]
    Syntax { path: PathBuf, message: String },
}

/// The whole config file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `mirror://NAME/…` base URLs: `NAME = "https://…"`.
    #[serde(default)]
    pub mirrors: BTreeMap<String, String>,
    /// Per-registry settings: `[registries."HOST[:PORT]"]`.
    #[serde(default)]
    pub registries: BTreeMap<String, RegistryConfig>,
    #[serde(default)]
    pub cache: CacheConfig,
    #[serde(default)]
    pub keys: KeysConfig,
    #[serde(default)]
    pub promote: PromoteConfig,
}

impl Config {
    /// Whether `[registries."REGISTRY"] insecure = true` (REGISTRY as in a reference,
    /// `HOST[:PORT]`).
    pub fn registry_insecure(&self, registry: &str) -> bool {
        self.registries.get(registry).is_some_and(|r| r.insecure)
    }
}

/// One `[registries."HOST"]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RegistryConfig {
    /// Speak plain `http://` to this registry (as loopback registries always are).
    #[serde(default)]
    pub insecure: bool,
}

/// `[cache]`: binary caches.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CacheConfig {
    /// Caches to substitute from, in priority order.
    #[serde(default)]
    pub substituters: Vec<String>,
    /// Public keys `NAME:base64` whose cache signatures are trusted.
    #[serde(default)]
    pub trusted_keys: Vec<String>,
    /// The key `cache push` signs with, NAME or FILE (overrides `[keys] default`).
    pub sign_key: Option<String>,
}

/// `[keys]`: signing keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KeysConfig {
    /// The key himg signs with when no `--sign-key` is given, NAME or FILE.
    pub default: Option<String>,
}

/// `[promote]`: promotion records.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PromoteConfig {
    /// Keys whose promotion records `--require-stage` accepts (besides `--trusted-key`).
    #[serde(default)]
    pub trusted_keys: Vec<String>,
}

/// Which environment variable (or none) chose a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub path: PathBuf,
    /// The variable the path was derived from.
    pub from_env: &'static str,
}

/// The config file and directory the environment names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Paths {
    /// The config file (`None`: no variable to derive it from).
    pub file: Option<Located>,
    /// The config directory (`None`: likewise).
    pub dir: Option<Located>,
    /// The file was named explicitly (`$HIMG_CONFIG`): it must exist.
    pub file_required: bool,
}

impl Paths {
    /// The paths for the environment `env` gives (see the module doc).
    pub fn from_env_with(env: &dyn Fn(&str) -> Option<String>) -> Paths {
        let non_empty = |k: &str| env(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        let at = |path: PathBuf, from_env| Located { path, from_env };
        let dir = if let Some(p) = non_empty(DIR_ENV) {
            Some(at(p, DIR_ENV))
        } else if let Some(p) = non_empty("XDG_CONFIG_HOME").filter(|p| p.is_absolute()) {
            Some(at(p.join("himg"), "XDG_CONFIG_HOME"))
        } else {
            non_empty("HOME").map(|h| at(h.join(".config/himg"), "HOME"))
        };
        let file = match non_empty(FILE_ENV) {
            Some(p) => Some(at(p, FILE_ENV)),
            None => dir.as_ref().map(|d| Located {
                path: d.path.join("config.toml"),
                from_env: d.from_env,
            }),
        };
        Paths {
            file_required: non_empty(FILE_ENV).is_some(),
            file,
            dir,
        }
    }

    /// The paths for this process's environment.
    pub fn from_env() -> Paths {
        Paths::from_env_with(&|k| std::env::var(k).ok())
    }

    /// `<config dir>/keys`, where `himg key generate NAME` keeps named keys.
    pub fn keys_dir(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.path.join("keys"))
    }
}

/// A config file as read: where it is, whether it exists, and its contents (empty if absent).
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub paths: Paths,
    /// The file existed and was read.
    pub exists: bool,
    pub config: Config,
}

impl Loaded {
    /// The file, when it was read (for "where did this come from").
    pub fn file(&self) -> Option<&Path> {
        self.paths
            .file
            .as_ref()
            .filter(|_| self.exists)
            .map(|f| f.path.as_path())
    }
}

/// Reads the config file this process's environment names.
pub fn load() -> Result<Loaded, ConfigError> {
    load_from(Paths::from_env())
}

/// The config directory of this process's environment (`keys/` lives there).
pub fn config_dir() -> Option<PathBuf> {
    Paths::from_env().dir.map(|d| d.path)
}

/// Reads the config file `paths` names (a missing optional file is an empty config).
pub fn load_from(paths: Paths) -> Result<Loaded, ConfigError> {
    let Some(file) = &paths.file else {
        return Ok(Loaded {
            paths,
            ..Default::default()
        });
    };
    let path = file.path.clone();
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Loaded {
            config: parse(&text, &path)?,
            exists: true,
            paths,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !paths.file_required => Ok(Loaded {
            paths,
            ..Default::default()
        }),
        Err(source) => Err(ConfigError::Io { path, source }),
    }
}

/// Parses config `text` (read from `path`, for messages).
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    toml::from_str::<Config>(text).map_err(|e| {
        let message = e.message().to_owned();
        match (unknown_field(&message), e.span()) {
            (Some((key, known)), Some(span)) => {
                let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
                ConfigError::UnknownKey {
                    path: path.to_path_buf(),
                    key: dotted(text, span.start, &key),
                    line,
                    known,
                }
            }
            _ => ConfigError::Syntax {
                path: path.to_path_buf(),
                message: e.to_string().trim_end().to_owned(),
            },
        }
    })
}

/// `unknown field `x`, expected one of `a`, `b`` → (`x`, "a, b").
fn unknown_field(message: &str) -> Option<(String, String)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (key, rest) = rest.split_once('`')?;
    let known = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .collect::<Vec<_>>()
        .join(", ");
    let known = if known.is_empty() {
        "none".to_owned()
    } else {
        known
    };
    Some((key.to_owned(), known))
}

/// `key` prefixed with the `[table]` header that encloses byte `at` of `text`, if any.
fn dotted(text: &str, at: usize, key: &str) -> String {
    let before = &text[..at.min(text.len())];
    let header = before.lines().rev().map(str::trim).find_map(|l| {
        l.strip_prefix('[')
            .and_then(|l| l.split(']').next())
            .map(|h| h.trim().trim_matches('[').trim().to_owned())
    });
    let own_line = before.rsplit('\n').next().unwrap_or("").trim();
    match header {
        // The key is itself a header (`[cachee]`): report it alone.
        _ if own_line.starts_with('[') => key.to_owned(),
        Some(h) if !h.is_empty() => format!("{h}.{key}"),
        _ => key.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn file_and_dir_resolution() {
        let p = Paths::from_env_with(&env(&[("HOME", "/h")]));
        assert_eq!(
            p.file.as_ref().unwrap().path,
            PathBuf::from("/h/.config/himg/config.toml")
        );
        assert_eq!(p.keys_dir(), Some(PathBuf::from("/h/.config/himg/keys")));
        let p = Paths::from_env_with(&env(&[("HOME", "/h"), ("XDG_CONFIG_HOME", "/x")]));
        assert_eq!(
            p.file.as_ref().unwrap().path,
            PathBuf::from("/x/himg/config.toml")
        );
        let p = Paths::from_env_with(&env(&[("HOME", "/h"), (DIR_ENV, "/d")]));
        assert_eq!(
            p.file.as_ref().unwrap().path,
            PathBuf::from("/d/config.toml")
        );
        let p = Paths::from_env_with(&env(&[(DIR_ENV, "/d"), (FILE_ENV, "/f.toml")]));
        assert!(p.file_required);
        assert_eq!(p.file.as_ref().unwrap().path, PathBuf::from("/f.toml"));
        assert_eq!(p.keys_dir(), Some(PathBuf::from("/d/keys")));
    }

    #[test]
    fn every_table_parses() {
        let c = parse(
            "[mirrors]\ndebian = \"http://mirror.example/debian\"\n\
             [registries.\"registry.example:5000\"]\ninsecure = true\n\
             [cache]\nsubstituters = [\"file:///c\"]\nsign-key = \"a\"\n\
             [keys]\ndefault = \"team-1\"\n[promote]\ntrusted-keys = [\"k:AA\"]\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert_eq!(c.mirrors["debian"], "http://mirror.example/debian");
        assert!(c.registries["registry.example:5000"].insecure);
        assert_eq!(c.keys.default.as_deref(), Some("team-1"));
        assert_eq!(c.promote.trusted_keys, ["k:AA"]);
    }

    #[test]
    fn unknown_keys_name_file_and_key() {
        let e = parse(
            "[cache]\nsubstituters = []\nsign_key = \"a\"\n",
            Path::new("/c.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("/c.toml"), "{e}");
        assert!(e.contains("`cache.sign_key`"), "{e}");
        assert!(e.contains("line 3"), "{e}");
        let e = parse("[mirorrs]\n", Path::new("/c.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`mirorrs`"), "{e}");
        let e = parse(
            "[registries.\"registry.example:5000\"]\ninsecure = true\nplain = 1\n",
            Path::new("/c.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("`registries.\"registry.example:5000\".plain`") && e.contains("line 3"),
            "{e}"
        );
    }

    #[test]
    fn registries_marked_insecure_speak_plain_http() {
        let c = parse(
            "[registries.\"registry.example:5000\"]\ninsecure = true\n[registries.\"other.example\"]\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert!(c.registry_insecure("registry.example:5000"));
        assert!(!c.registry_insecure("other.example"));
        assert!(!c.registry_insecure("registry.example"));
    }
}
