//! `himg cache push|serve|hash-token`.

use std::process::ExitCode;

use serde_json::json;

use super::args::{CacheCommand, GlobalArgs};
use super::{Error, Printer, session};
use crate::ops::cache::{self, PushOptions, ServeOptions};

pub fn run(global: &GlobalArgs, cmd: &CacheCommand, printer: &Printer) -> Result<ExitCode, Error> {
    let session = session(global, printer);
    match cmd {
        CacheCommand::Push {
            url,
            files,
            roots,
            cache,
            json,
        } => {
            let opts = PushOptions {
                url: url.clone(),
                files: files.clone(),
                roots: *roots,
                cache: cache.options(),
            };
            let report = cache::push(&session, &opts)?;
            if *json {
                printer.json(&json!({
                    "pushed": report.pushed,
                    "skipped": report.skipped,
                    "bytes": report.bytes,
                }));
            }
        }
        CacheCommand::Serve {
            listen,
            dir,
            tokens,
            retention_days,
        } => {
            let opts = ServeOptions {
                listen: listen.clone(),
                dir: dir.clone(),
                tokens: tokens.clone(),
                retention_days: *retention_days,
            };
            cache::serve(&session, &opts)?;
        }
        CacheCommand::HashToken { token } => printer.data(&cache::hash_token(token)),
    }
    Ok(ExitCode::SUCCESS)
}
