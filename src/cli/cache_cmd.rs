//! `himg key generate`, `himg cache push|serve|hash-token`, and the cache settings `himg build` uses
//! (substituters, trusted keys, signing key: flags, then environment, then the config file).

use std::collections::BTreeMap;
use std::process::ExitCode;

use serde_json::json;

use super::args::{CacheCommand, GlobalArgs, KeyCommand};
use super::{Error, Printer, open_store};
use crate::cache::SecretKey;
use crate::cache::sign::{config_dir, secret_key_path};

pub fn key(cmd: &KeyCommand, printer: &Printer) -> Result<ExitCode, Error> {
    match cmd {
        KeyCommand::Generate { name, out } => {
            let key = SecretKey::generate(name)?;
            let path = match out {
                Some(p) => p.clone(),
                None => secret_key_path(
                    &config_dir().ok_or_else(|| {
                        Error::CacheConfig(
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

pub fn run(global: &GlobalArgs, cmd: &CacheCommand, printer: &Printer) -> Result<ExitCode, Error> {
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
                outputs.extend(crate::ops::compile::closure_of(
                    &super::session(global, printer),
                    f,
                    &store,
                )?);
            }
            if *roots {
                outputs.extend(crate::ops::cache::roots_closure(&store)?);
            }
            let report =
                crate::ops::cache::push_outputs(&store, url, &cache.options(), &outputs, printer)?;
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
