//! The settings of binary caches and signing keys: options first, then the environment, then the
//! config file ([`crate::config`], tables `[cache]`, `[keys]` and `[promote]`).

use super::Error;
use crate::cache::backend::BackendOptions;
use crate::cache::substitute::Substituters;
use crate::cache::{PublicKey, SecretKey, TrustedKeys, open_backend};
use crate::config::{CacheConfig, Config};

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

fn config_file() -> Result<Config, Error> {
    Ok(crate::config::load()?.config)
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

/// The key pushes sign with: `--sign-key NAME|FILE`, else the config file's `[cache] sign-key`
/// (NAME or FILE too), else as [`signing_key_named`].
pub fn signing_key(args: &CacheOptions) -> Result<SecretKey, Error> {
    match (&args.sign_key, config()?.sign_key) {
        (None, Some(v)) => super::keys::read(&v),
        (v, _) => signing_key_named(v.as_deref()),
    }
}

/// The key a `--sign-key NAME|FILE` value names (see [`super::keys::resolve`]); without one, the
/// config file's `[keys] default`, else its `[cache] sign-key`, else the only key
/// `himg key generate` made.
pub fn signing_key_named(value: Option<&str>) -> Result<SecretKey, Error> {
    if let Some(v) = value {
        return super::keys::read(v);
    }
    let cfg = config_file()?;
    if let Some(v) = cfg.keys.default.as_ref().or(cfg.cache.sign_key.as_ref()) {
        return super::keys::read(v);
    }
    super::keys::only()?.ok_or_else(|| {
        Error::CacheConfig(
            "no signing key: create one with `himg key generate NAME` or pass --sign-key NAME|FILE"
                .into(),
        )
    })
}
