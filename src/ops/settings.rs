//! The effective configuration `himg config` prints: every setting, its value, and where the value
//! came from (`default`, `file PATH`, `env NAME`).

use std::fmt;
use std::path::PathBuf;

use serde_json::{Value, json};

use super::Error;
use crate::config::{self, Config, Paths};

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Nothing set it: himg's default.
    Default,
    /// The config file.
    File(PathBuf),
    /// An environment variable.
    Env(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File(p) => write!(f, "file {}", p.display()),
            Source::Env(name) => write!(f, "env {name}"),
        }
    }
}

/// One effective setting.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    /// Dotted key, `cache.substituters`, `mirrors.debian`, `store`….
    pub key: String,
    /// The value (`null` when unset; secrets show as `"<set>"`).
    pub value: Value,
    pub source: Source,
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Effective {
    /// The config file consulted (`None`: no variable to derive it from).
    pub file: Option<PathBuf>,
    /// Whether it exists.
    pub file_exists: bool,
    pub settings: Vec<Setting>,
}

impl Effective {
    pub fn json(&self) -> Value {
        json!({
            "file": self.file.as_ref().map(|p| p.display().to_string()),
            "file_exists": self.file_exists,
            "settings": self.settings.iter().map(|s| json!({
                "key": s.key,
                "value": s.value,
                "source": s.source.to_string(),
            })).collect::<Vec<_>>(),
        })
    }
}

/// Settings only the environment sets: key, variable, default, secret.
const ENV_ONLY: &[(&str, &str, Option<&str>, bool)] = &[
    (
        "build.source-date-epoch",
        "SOURCE_DATE_EPOCH",
        Some("1"),
        false,
    ),
    ("cache.token", "HIMG_CACHE_TOKEN", None, true),
    ("registry.auth-file", "REGISTRY_AUTH_FILE", None, false),
    (
        "registry.docker-config",
        "DOCKER_CONFIG",
        Some("~/.docker"),
        false,
    ),
    ("registry.runtime-dir", "XDG_RUNTIME_DIR", None, false),
    ("registry.user", "HIMG_REGISTRY_USER", None, false),
    ("registry.password", "HIMG_REGISTRY_PASSWORD", None, true),
    (
        "registry.timeout",
        "HIMG_REGISTRY_TIMEOUT",
        Some("60"),
        false,
    ),
    (
        "debian.auth-file",
        "HIMG_AUTH_FILE",
        Some("~/.config/himg/auth.conf"),
        false,
    ),
    ("policy.today", "HIMG_TODAY", None, false),
    ("promote.now", "HIMG_NOW", None, false),
    ("output.no-color", "NO_COLOR", None, false),
    ("output.ci", "CI", None, false),
    (
        "output.progress-interval-ms",
        "HIMG_PROGRESS_INTERVAL_MS",
        Some("5000"),
        false,
    ),
    (
        "workspace.jobs",
        "HIMG_JOBS",
        Some("the number of cores"),
        false,
    ),
];

/// The effective configuration of this process.
pub fn effective() -> Result<Effective, Error> {
    effective_with(&|k| std::env::var(k).ok(), std::env::vars().collect())
}

/// The effective configuration for the environment `env` (all of its pairs in `vars`).
pub fn effective_with(
    env: &dyn Fn(&str) -> Option<String>,
    vars: Vec<(String, String)>,
) -> Result<Effective, Error> {
    let set = |k: &str| env(k).filter(|v| !v.is_empty());
    let loaded = config::load_from(Paths::from_env_with(&|k| set(k)))?;
    let from_file = || {
        loaded
            .file()
            .map_or(Source::Default, |p| Source::File(p.to_path_buf()))
    };
    let mut out = locations(&loaded.paths, &set);
    out.extend(mirrors(&loaded.config, &vars, &from_file));
    out.extend(file_tables(&loaded.config, &set, &from_file));
    for (key, var, default, secret) in ENV_ONLY {
        let (value, source) = match set(var) {
            Some(_) if *secret => (json!("<set>"), Source::Env((*var).into())),
            Some(v) => (json!(v), Source::Env((*var).into())),
            None => (json!(default), Source::Default),
        };
        out.push(setting(key, value, source));
    }
    Ok(Effective {
        file: loaded.paths.file.as_ref().map(|f| f.path.clone()),
        file_exists: loaded.exists,
        settings: out,
    })
}

fn setting(key: &str, value: Value, source: Source) -> Setting {
    Setting {
        key: key.to_owned(),
        value,
        source,
    }
}

/// The config file, config directory, keys directory and store, and the variables naming them.
fn locations(paths: &Paths, set: &dyn Fn(&str) -> Option<String>) -> Vec<Setting> {
    let located = |l: Option<&config::Located>, suffix: &str| match l {
        None => (Value::Null, Source::Default),
        Some(l) => {
            let source = match l.from_env {
                "HOME" => Source::Default,
                var => Source::Env(var.into()),
            };
            let path = if suffix.is_empty() {
                l.path.clone()
            } else {
                l.path.join(suffix)
            };
            (json!(path.display().to_string()), source)
        }
    };
    let (file, file_src) = located(paths.file.as_ref(), "");
    let (dir, dir_src) = located(paths.dir.as_ref(), "");
    let (keys, keys_src) = located(paths.dir.as_ref(), "keys");
    let store = himg_store::Store::default_root_from(|k| set(k).map(Into::into))
        .map_or(Value::Null, |p| json!(p.display().to_string()));
    let store_src = ["HIMG_STORE", "XDG_DATA_HOME"]
        .into_iter()
        .find(|k| set(k).is_some())
        .map_or(Source::Default, |k| Source::Env(k.into()));
    vec![
        setting("config.file", file, file_src),
        setting("config.dir", dir, dir_src),
        setting("keys.dir", keys, keys_src),
        setting("store", store, store_src),
    ]
}

/// `mirrors.NAME` from the file, overridden (or added) by `HIMG_MIRROR_*`.
fn mirrors(
    cfg: &Config,
    vars: &[(String, String)],
    from_file: &dyn Fn() -> Source,
) -> Vec<Setting> {
    use crate::debian::mirror::env_var_for;
    let env_value = |var: &str| {
        vars.iter()
            .find(|(k, v)| k == var && !v.trim().is_empty())
            .map(|(_, v)| v.clone())
    };
    let mut out: Vec<Setting> = cfg
        .mirrors
        .iter()
        .map(|(name, url)| {
            let var = env_var_for(name);
            let key = format!("mirrors.{name}");
            match env_value(&var) {
                Some(v) => setting(&key, json!(v), Source::Env(var)),
                None => setting(&key, json!(url), from_file()),
            }
        })
        .collect();
    let mut env_only: Vec<&(String, String)> = vars
        .iter()
        .filter(|(k, v)| k.starts_with("HIMG_MIRROR_") && !v.trim().is_empty())
        .filter(|(k, _)| !cfg.mirrors.keys().any(|n| env_var_for(n) == *k))
        .collect();
    env_only.sort();
    for (var, value) in env_only {
        let name = var["HIMG_MIRROR_".len()..]
            .to_ascii_lowercase()
            .replace('_', "-");
        out.push(setting(
            &format!("mirrors.{name}"),
            json!(value),
            Source::Env(var.clone()),
        ));
    }
    out
}

/// `[registries]`, `[cache]`, `[keys]` and `[promote]`.
fn file_tables(
    cfg: &Config,
    set: &dyn Fn(&str) -> Option<String>,
    from_file: &dyn Fn() -> Source,
) -> Vec<Setting> {
    let or_default = |present: bool, value: Value| {
        let source = if present {
            from_file()
        } else {
            Source::Default
        };
        (value, source)
    };
    let mut out: Vec<Setting> = cfg
        .registries
        .iter()
        .map(|(host, r)| {
            setting(
                &format!("registries.\"{host}\".insecure"),
                json!(r.insecure),
                from_file(),
            )
        })
        .collect();
    let substituters = match set("HIMG_SUBSTITUTERS").filter(|v| !v.trim().is_empty()) {
        Some(v) => {
            let urls: Vec<&str> = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            (json!(urls), Source::Env("HIMG_SUBSTITUTERS".into()))
        }
        None => or_default(
            !cfg.cache.substituters.is_empty(),
            json!(cfg.cache.substituters),
        ),
    };
    let tables = [
        ("cache.substituters", substituters),
        (
            "cache.trusted-keys",
            or_default(
                !cfg.cache.trusted_keys.is_empty(),
                json!(cfg.cache.trusted_keys),
            ),
        ),
        (
            "cache.sign-key",
            or_default(cfg.cache.sign_key.is_some(), json!(cfg.cache.sign_key)),
        ),
        (
            "keys.default",
            or_default(cfg.keys.default.is_some(), json!(cfg.keys.default)),
        ),
        (
            "promote.trusted-keys",
            or_default(
                !cfg.promote.trusted_keys.is_empty(),
                json!(cfg.promote.trusted_keys),
            ),
        ),
    ];
    out.extend(tables.into_iter().map(|(k, (v, s))| setting(k, v, s)));
    out
}
