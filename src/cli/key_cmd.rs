//! `himg key generate|list|public`.

use std::process::ExitCode;

use super::args::KeyCommand;
use super::{Error, Printer};
use crate::ops::keys;

pub fn key(cmd: &KeyCommand, printer: &Printer) -> Result<ExitCode, Error> {
    match cmd {
        KeyCommand::Generate { name, out } => {
            let key = keys::generate(name, out.as_deref())?;
            printer.status("Saved", &format!("secret key {}", key.path.display()));
            printer.data(&key.public);
        }
        KeyCommand::List { json } => list(*json, printer)?,
        KeyCommand::Public { name } => printer.data(&keys::public(name)?),
    }
    Ok(ExitCode::SUCCESS)
}

fn list(json: bool, printer: &Printer) -> Result<(), Error> {
    let found = keys::list()?;
    if json {
        printer.json(&serde_json::Value::Array(
            found.iter().map(keys::KeyInfo::json).collect(),
        ));
        return Ok(());
    }
    if found.is_empty() {
        let dir = keys::keys_dir()
            .map_or_else(|| "<config dir>/keys".into(), |d| d.display().to_string());
        printer.status(
            "None",
            &format!("no keys in {dir}: create one with `himg key generate NAME`"),
        );
    }
    for k in &found {
        printer.data(&format!("{}\t{}\t{}", k.name, k.public, k.file.display()));
    }
    Ok(())
}
