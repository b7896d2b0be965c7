//! The settings of binary caches and signing keys: options first, then the environment, then the
//! config file (`<config dir>/config.toml`, tables `[cache]` and `[promote]`).

use serde::Deserialize;

use super::Error;
use crate::cache::backend::BackendOptions;
use crate::cache::sign::config_dir;
use crate::cache::substitute::Substituters;
use crate::cache::{PublicKey, SecretKey, TrustedKeys, open_backend};

/// How to reach and trust binary caches (`build --substituters …`, `cache push`).
#[derive(Debug, Clone, Default)]
pub struct CacheOptions {
    /// Caches to substitute from, in priority order (empty: `$HIMG_SUBSTITUTERS`, else the config).
    pub substituters: Vec<String>,
    /// Public keys `NAME:base64` whose signatures are trusted (with the config file's).
    pub trusted_keys: Vec<String>,
    /// The secret key pushes sign with, `NAME` or `FILE` (default: the config's, else the only
    /// generated key).
    pub sign_key: Option<String>,
    /// Bearer token for HTTP caches (default: `$HIMG_CACHE_TOKEN`).
    pub cache_token: Option<String>,
}

/// The `[cache]` table of `<config dir>/config.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct CacheConfig {
    #[serde(default)]
    substituters: Vec<String>,
    #[serde(default)]
    trusted_keys: Vec<String>,
    /// A key NAME or a secret key FILE.
    sign_key: Option<String>,
}

/// The `[promote]` table of `<config dir>/config.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct PromoteConfig {
    /// Keys whose promotion records `--require-stage` accepts (besides `--trusted-key`).
    #[serde(default)]
    trusted_keys: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    cache: CacheConfig,
    #[serde(default)]
    promote: PromoteConfig,
}

fn config_file() -> Result<ConfigFile, Error> {
    let Some(dir) = config_dir() else {
        return Ok(ConfigFile::default());
    };
    let path = dir.join("config.toml");
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str::<ConfigFile>(&text)
            .map_err(|e| Error::CacheConfig(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ConfigFile::default()),
        Err(source) => Err(Error::Io { path, source }),
    }
}

fn config() -> Result<CacheConfig, Error> {
    config_file().map(|c| c.cache)
}

/// The config file's `[promote] trusted-keys`.
pub fn promote_trusted_keys() -> Result<Vec<String>, Error> {
    config_file().map(|c| c.promote.trusted_keys)
}

pub fn backend_options(args: &CacheOptions) -> BackendOptions {
    BackendOptions {
        token: args
            .cache_token
            .clone()
            .or_else(|| std::env::var("HIMG_CACHE_TOKEN").ok())
            .filter(|t| !t.is_empty()),
    }
}

/// The substituter URLs: `--substituters`, else `$HIMG_SUBSTITUTERS`, else the config file.
fn substituter_urls(args: &CacheOptions, cfg: &CacheConfig) -> Vec<String> {
    if !args.substituters.is_empty() {
        return args.substituters.clone();
    }
    if let Ok(env) = std::env::var("HIMG_SUBSTITUTERS")
        && !env.trim().is_empty()
    {
        return env
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
    }
    cfg.substituters.clone()
}

fn trusted_keys(args: &CacheOptions, cfg: &CacheConfig) -> Result<TrustedKeys, Error> {
    let keys = args
        .trusted_keys
        .iter()
        .chain(&cfg.trusted_keys)
        .map(|k| PublicKey::parse(k))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(TrustedKeys::new(keys))
}

/// The substituters of a build, or `None` when none is configured.
pub fn substituters<'a>(
    args: &CacheOptions,
    warn: &'a (dyn Fn(&str) + Sync),
) -> Result<Option<Substituters<'a>>, Error> {
    let cfg = config()?;
    let urls = substituter_urls(args, &cfg);
    if urls.is_empty() {
        return Ok(None);
    }
    let trusted = trusted_keys(args, &cfg)?;
    if trusted.is_empty() {
        warn(
            "substituters are set but no key is trusted (--trusted-key NAME:base64): every entry will be refused",
        );
    }
    let opts = backend_options(args);
    let backends = urls
        .iter()
        .map(|u| open_backend(u, &opts))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(Substituters::new(backends, trusted, warn)))
}

/// The key pushes sign with: `--sign-key NAME|FILE`, else the config file's `sign-key` (NAME or
/// FILE too), else the only generated key.
pub fn signing_key(args: &CacheOptions) -> Result<SecretKey, Error> {
    signing_key_named(args.sign_key.as_deref())
}

/// The key a `--sign-key NAME|FILE` value names (see [`super::keys::resolve`]); without one, the
/// config file's `sign-key`, else the only key `himg key generate` made.
pub fn signing_key_named(value: Option<&str>) -> Result<SecretKey, Error> {
    if let Some(v) = value {
        return super::keys::read(v);
    }
    if let Some(v) = &config()?.sign_key {
        return super::keys::read(v);
    }
    super::keys::only()?.ok_or_else(|| {
        Error::CacheConfig(
            "no signing key: create one with `himg key generate NAME` or pass --sign-key NAME|FILE"
                .into(),
        )
    })
}
