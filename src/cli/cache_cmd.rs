//! `himg key generate`, `himg cache push|serve|hash-token`, and the cache settings `himg build` uses
//! (substituters, trusted keys, signing key: flags, then environment, then the config file).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use himg_store::{B3Digest, OutputRecord, Store};
use serde::Deserialize;
use serde_json::json;

use super::args::{CacheArgs, CacheCommand, GlobalArgs, KeyCommand};
use super::{CliError, Printer, open_store};
use crate::cache::backend::BackendOptions;
use crate::cache::sign::{config_dir, secret_key_path};
use crate::cache::substitute::{PushReport, Substituters, push};
use crate::cache::{Backend, PublicKey, SecretKey, TrustedKeys, open_backend};

/// The `[cache]` table of `<config dir>/config.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct CacheConfig {
    #[serde(default)]
    substituters: Vec<String>,
    #[serde(default)]
    trusted_keys: Vec<String>,
    sign_key: Option<PathBuf>,
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

fn config_file() -> Result<ConfigFile, CliError> {
    let Some(dir) = config_dir() else {
        return Ok(ConfigFile::default());
    };
    let path = dir.join("config.toml");
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str::<ConfigFile>(&text)
            .map_err(|e| CliError::CacheConfig(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ConfigFile::default()),
        Err(source) => Err(CliError::Io { path, source }),
    }
}

fn config() -> Result<CacheConfig, CliError> {
    config_file().map(|c| c.cache)
}

/// The config file's `[promote] trusted-keys`.
pub(super) fn promote_trusted_keys() -> Result<Vec<String>, CliError> {
    config_file().map(|c| c.promote.trusted_keys)
}

fn backend_options(args: &CacheArgs) -> BackendOptions {
    BackendOptions {
        token: args
            .cache_token
            .clone()
            .or_else(|| std::env::var("HIMG_CACHE_TOKEN").ok())
            .filter(|t| !t.is_empty()),
    }
}

/// The substituter URLs: `--substituters`, else `$HIMG_SUBSTITUTERS`, else the config file.
fn substituter_urls(args: &CacheArgs, cfg: &CacheConfig) -> Vec<String> {
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

fn trusted_keys(args: &CacheArgs, cfg: &CacheConfig) -> Result<TrustedKeys, CliError> {
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
    args: &CacheArgs,
    warn: &'a (dyn Fn(&str) + Sync),
) -> Result<Option<Substituters<'a>>, CliError> {
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

/// The key pushes sign with: `--sign-key`, else the config file's, else the only generated key.
fn signing_key(args: &CacheArgs) -> Result<SecretKey, CliError> {
    if let Some(p) = &args.sign_key {
        return Ok(SecretKey::read(p)?);
    }
    let cfg = config()?;
    if let Some(p) = &cfg.sign_key {
        return Ok(SecretKey::read(p)?);
    }
    let no_key = || {
        CliError::CacheConfig(
            "no signing key: create one with `himg key generate NAME` or pass --sign-key FILE"
                .into(),
        )
    };
    let dir = config_dir().ok_or_else(no_key)?.join("keys");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "secret"))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    match found.as_slice() {
        [one] => Ok(SecretKey::read(one)?),
        [] => Err(no_key()),
        _ => Err(CliError::CacheConfig(format!(
            "several keys in {}: choose one with --sign-key FILE",
            dir.display()
        ))),
    }
}

/// The key `himg promote --sign-key` names: a secret key file, or the NAME of a key
/// `himg key generate NAME` made; without one, the key `cache push` signs with.
pub(super) fn signing_key_named(name: Option<&str>) -> Result<SecretKey, CliError> {
    let file = name.map(|n| {
        let p = PathBuf::from(n);
        match config_dir() {
            Some(dir) if !p.exists() && !n.contains('/') => secret_key_path(&dir, n),
            _ => p,
        }
    });
    signing_key(&CacheArgs {
        sign_key: file,
        ..CacheArgs::default()
    })
}

/// Pushes `outputs` to `url` and reports what was sent.
pub fn push_outputs(
    store: &Store,
    url: &str,
    args: &CacheArgs,
    outputs: &BTreeMap<B3Digest, OutputRecord>,
    printer: &Printer,
) -> Result<PushReport, CliError> {
    let key = signing_key(args)?;
    let backend: Box<dyn Backend> = open_backend(url, &backend_options(args))?;
    let report = push(store, backend.as_ref(), &key, outputs)?;
    printer.status(
        "Pushed",
        &format!(
            "{} entries ({} already there), {:.1} KiB to {url}",
            report.pushed,
            report.skipped,
            report.bytes as f64 / 1024.0
        ),
    );
    Ok(report)
}

/// Every output the GC roots reach (through the outputs each was built from), by derivation key.
fn roots_closure(store: &Store) -> Result<BTreeMap<B3Digest, OutputRecord>, CliError> {
    let mut out = BTreeMap::new();
    let mut seen = std::collections::BTreeSet::new();
    let mut stack: Vec<himg_store::OutputPath> =
        store.roots()?.into_iter().flat_map(|r| r.outputs).collect();
    while let Some(path) = stack.pop() {
        if !seen.insert(path.clone()) {
            continue;
        }
        let Some(rec) = store.lookup_output(&path)? else {
            continue;
        };
        stack.extend(rec.refs_outputs.iter().cloned());
        for key in store.keys_of_output(&path)? {
            out.insert(key, rec.clone());
        }
    }
    Ok(out)
}

pub fn key(cmd: &KeyCommand, printer: &Printer) -> Result<ExitCode, CliError> {
    match cmd {
        KeyCommand::Generate { name, out } => {
            let key = SecretKey::generate(name)?;
            let path = match out {
                Some(p) => p.clone(),
                None => secret_key_path(
                    &config_dir().ok_or_else(|| {
                        CliError::CacheConfig(
                            "no config directory (set HOME or HIMG_CONFIG_DIR), or pass --out FILE"
                                .into(),
                        )
                    })?,
                    name,
                ),
            };
            key.save(&path)?;
            printer.status("Saved", &format!("secret key {}", path.display()));
            printer.data(&key.public().to_string());
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub fn run(
    global: &GlobalArgs,
    cmd: &CacheCommand,
    printer: &Printer,
) -> Result<ExitCode, CliError> {
    match cmd {
        CacheCommand::Push {
            url,
            files,
            roots,
            cache,
            json,
        } => {
            let store = open_store(global)?;
            let _guard = store.build_guard()?;
            let mut outputs = BTreeMap::new();
            for f in files {
                outputs.extend(super::build::closure_of(global, f, &store, printer)?);
            }
            if *roots {
                outputs.extend(roots_closure(&store)?);
            }
            let report = push_outputs(&store, url, cache, &outputs, printer)?;
            if *json {
                printer.json(&json!({
                    "pushed": report.pushed,
                    "skipped": report.skipped,
                    "bytes": report.bytes,
                }));
            }
            Ok(ExitCode::SUCCESS)
        }
        CacheCommand::Serve {
            listen,
            dir,
            tokens,
            retention_days,
        } => {
            let dir = match dir {
                Some(d) => d.clone(),
                None => open_store(global)?.root().join("cache-server"),
            };
            let tokens = match tokens {
                Some(p) => crate::cache::server::TokenSource::file(p)?,
                None => {
                    printer.warn("no --tokens file: anyone who can connect may read and push");
                    crate::cache::server::TokenSource::open()
                }
            };
            let warn = |m: &str| printer.warn(m);
            let info = |m: &str| printer.status("Serving", m);
            crate::cache::server::serve(&crate::cache::server::ServeOptions {
                listen,
                dir: &dir,
                tokens: &tokens,
                retention: retention_days.map(|d| std::time::Duration::from_secs(d * 86_400)),
                warn: &warn,
                info: &info,
            })?;
            Ok(ExitCode::SUCCESS)
        }
        CacheCommand::HashToken { token } => {
            printer.data(&crate::cache::server::hash_token(token));
            Ok(ExitCode::SUCCESS)
        }
    }
}
