//! `himg inspect` and `himg diff`: one image of any target read back and reported, or two compared.

use std::process::ExitCode;

use super::args::{DiffArgs, GlobalArgs, InspectArgs};
use super::{Error, Printer, session};
use crate::ops::inspect::{self, DiffOptions, InspectOptions, Selection};

/// `himg inspect TARGET`.
pub fn inspect(
    global: &GlobalArgs,
    args: &InspectArgs,
    printer: &Printer,
) -> Result<ExitCode, Error> {
    let opts = InspectOptions {
        target: args.target.clone(),
        selection: Selection {
            image: args.image.clone(),
            arch: args.arch.clone(),
            insecure: args.insecure,
        },
        scripts: args.scripts,
    };
    let inspected = inspect::inspect(&session(global, printer), &opts)?;
    if args.json {
        printer.json(&inspected.json());
    } else {
        printer.data(&inspected.text());
    }
    Ok(ExitCode::SUCCESS)
}

/// `himg diff A B`.
pub fn diff(global: &GlobalArgs, args: &DiffArgs, printer: &Printer) -> Result<ExitCode, Error> {
    let opts = DiffOptions {
        a: args.a.clone(),
        b: args.b.clone(),
        selection: Selection {
            image: args.image.clone(),
            arch: args.arch.clone(),
            insecure: args.insecure,
        },
    };
    let report = inspect::diff(&session(global, printer), &opts)?;
    if args.json {
        printer.json(&serde_json::to_value(&report).unwrap_or_default());
    } else {
        printer.data(&report.render());
    }
    Ok(ExitCode::SUCCESS)
}
