//! `himg store verify [--repair]|gc|roots|info`: inspecting and maintaining the store.

use std::process::ExitCode;

use super::args::{GlobalArgs, StoreCommand};
use super::{Error, Printer, Session, session};
use crate::ops::store;

pub fn run(global: &GlobalArgs, cmd: &StoreCommand, printer: &Printer) -> Result<ExitCode, Error> {
    let session = session(global, printer);
    match cmd {
        StoreCommand::Verify { repair, json } => verify(&session, *repair, *json),
        StoreCommand::Gc { dry_run, json } => {
            let collected = store::gc(&session, *dry_run)?;
            if *json {
                printer.json(&collected.json());
            }
            collected.print(printer);
            Ok(ExitCode::SUCCESS)
        }
        StoreCommand::Roots { json, remove } => roots(&session, *json, remove.as_deref()),
        StoreCommand::Info { json } => {
            let info = store::info(&session)?;
            if *json {
                printer.json(&info.json());
            } else {
                printer.data(&info.text());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `store verify [--repair]`: exit 4 when a plain verification finds problems.
fn verify(session: &Session<'_>, repair: bool, json: bool) -> Result<ExitCode, Error> {
    let printer = session.printer();
    if repair {
        let repaired = store::repair(session)?;
        if json {
            printer.json(&repaired.json());
        }
        repaired.print(printer);
        return Ok(ExitCode::SUCCESS);
    }
    let verified = store::verify(session)?;
    if json {
        printer.json(&verified.json());
    }
    verified.print(printer);
    if verified.is_ok() {
        return Ok(ExitCode::SUCCESS);
    }
    printer.rendered(&format!(
        "error: the store has {} problem(s)\nhint: `himg store verify --repair` removes them and every output built from them; the next build rebuilds those\n",
        verified.0.problems.len()
    ));
    Ok(ExitCode::from(4))
}

/// `store roots [--remove NAME]`.
fn roots(session: &Session<'_>, json: bool, remove: Option<&str>) -> Result<ExitCode, Error> {
    let printer = session.printer();
    if let Some(name) = remove {
        if store::remove_root(session, name)? {
            printer.status("Removed", &format!("root `{name}`"));
        } else {
            printer.warn(&format!("no root named `{name}`"));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let roots = store::roots(session)?;
    if json {
        printer.json(&store::roots_json(&roots));
    } else {
        printer.data(&store::roots_text(&roots));
    }
    Ok(ExitCode::SUCCESS)
}
