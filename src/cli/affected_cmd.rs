//! `himg affected TARGET [--since REV]`: which images will change, and why (nothing is built).

use std::process::ExitCode;

use super::args::{AffectedArgs, GlobalArgs};
use super::{Error, Printer, session};
use crate::ops::affected::{AffectedOptions, Reason, affected as find, by_file};

pub fn affected(
    global: &GlobalArgs,
    args: &AffectedArgs,
    printer: &Printer,
) -> Result<ExitCode, Error> {
    let opts = AffectedOptions {
        target: args.target.clone(),
        since: args.since.clone(),
    };
    let answer = find(&session(global, printer), &opts)?;
    if args.json {
        printer.json(&answer.json());
        return Ok(ExitCode::SUCCESS);
    }
    let mut text = String::new();
    for (file, images) in by_file(&answer) {
        for img in images {
            let why: Vec<String> = img.reasons.iter().map(describe).collect();
            let state = if img.affected { "changes" } else { "unchanged" };
            text.push_str(&format!("{file} {} {state}", img.image));
            if !why.is_empty() {
                text.push_str(&format!(" ({})", why.join("; ")));
            }
            text.push('\n');
        }
    }
    printer.data(&text);
    Ok(ExitCode::SUCCESS)
}

fn describe(reason: &Reason) -> String {
    match reason {
        Reason::NotBuilt => "not built in this store".into(),
        Reason::NewImage => "new image".into(),
        Reason::DefinitionEdited { path } => format!("{path} edited"),
        Reason::LockMoved { path } => format!("{path} moved"),
        Reason::SourceEdited { path } => format!("{path} edited"),
        Reason::BasePinMoved { from, to } => format!("base pin {from} → {to}"),
        Reason::KeyChanged => "inputs changed".into(),
    }
}
