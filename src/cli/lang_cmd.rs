//! `himg check`, `himg fmt` and `himg eval`: the language commands (no store needed).

use std::process::ExitCode;

use super::args::{CheckArgs, EvalArgs, FmtArgs, GlobalArgs};
use super::{Error, Printer, Session, session};
use crate::ops;

pub fn check(global: &GlobalArgs, args: &CheckArgs, printer: &Printer) -> Result<ExitCode, Error> {
    if args.json {
        let report = ops::lang::check_report(&session(global, printer), &args.file)?;
        let text = serde_json::to_string_pretty(&report).unwrap_or_else(|_| "null".into());
        printer.data(&format!("{text}\n"));
        // The same exit code as without --json: 1 when the file has diagnostics.
        return Ok(if report.ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    let checked = ops::lang::check(&session(global, printer), &args.file)?;
    printer.status("Checked", &checked.summary());
    Ok(ExitCode::SUCCESS)
}

pub fn eval(global: &GlobalArgs, args: &EvalArgs, printer: &Printer) -> Result<ExitCode, Error> {
    let value = ops::lang::eval(&session(global, printer), &args.file)?;
    printer.json(&value);
    Ok(ExitCode::SUCCESS)
}

pub fn fmt(args: &FmtArgs, printer: &Printer) -> Result<ExitCode, Error> {
    let formatted = ops::lang::fmt(&Session::new(printer), &args.files, args.check)?;
    if formatted.unformatted.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        printer.rendered(&format!(
            "hint: run `himg fmt {}` to format\n",
            formatted.unformatted.join(" ")
        ));
        Ok(ExitCode::from(1))
    }
}
