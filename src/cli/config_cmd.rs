//! `himg config [--json]`: the effective configuration.

use std::process::ExitCode;

use super::args::ConfigArgs;
use super::{Error, Printer};
use crate::ops::settings;

pub fn config(args: &ConfigArgs, printer: &Printer) -> Result<ExitCode, Error> {
    let effective = settings::effective()?;
    if args.json {
        printer.json(&effective.json());
        return Ok(ExitCode::SUCCESS);
    }
    match &effective.file {
        Some(f) if effective.file_exists => printer.status("Config", &f.display().to_string()),
        Some(f) => printer.status("Config", &format!("{} (no such file)", f.display())),
        None => printer.status(
            "Config",
            "no file (set HIMG_CONFIG, HIMG_CONFIG_DIR or HOME)",
        ),
    }
    let width = effective.settings.iter().map(|s| s.key.len()).max();
    let mut text = String::new();
    for s in &effective.settings {
        let line = format!("{} = {}", s.key, s.value);
        let pad = width.unwrap_or(0) + 3 + 24;
        text.push_str(&format!("{line:<pad$}  # {}\n", s.source));
    }
    printer.data(&text);
    Ok(ExitCode::SUCCESS)
}
