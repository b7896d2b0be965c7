//! `himg check`, `himg fmt` and `himg eval`: the language commands (no store needed).

use std::process::ExitCode;

use super::args::{CheckArgs, EvalArgs, FmtArgs, GlobalArgs};
use super::{Error, Printer};
use crate::load::{LoadError, load_file};

pub fn check(global: &GlobalArgs, args: &CheckArgs, printer: &Printer) -> Result<ExitCode, Error> {
    let loaded = load_file(&args.file, global.project_root.as_deref())?;
    let names: Vec<&str> = loaded
        .evaluated
        .images
        .iter()
        .map(|i| i.name.as_str())
        .collect();
    printer.status(
        "Checked",
        &format!(
            "{} ({} image{}: {})",
            args.file.display(),
            names.len(),
            if names.len() == 1 { "" } else { "s" },
            names.join(", ")
        ),
    );
    Ok(ExitCode::SUCCESS)
}

pub fn eval(global: &GlobalArgs, args: &EvalArgs, printer: &Printer) -> Result<ExitCode, Error> {
    let loaded = load_file(&args.file, global.project_root.as_deref())?;
    let value = serde_json::to_value(&loaded.evaluated).unwrap_or(serde_json::Value::Null);
    printer.json(&value);
    Ok(ExitCode::SUCCESS)
}

pub fn fmt(args: &FmtArgs, printer: &Printer) -> Result<ExitCode, Error> {
    let mut unformatted = Vec::new();
    for file in &args.files {
        let bytes = std::fs::read(file).map_err(|source| Error::Io {
            path: file.clone(),
            source,
        })?;
        let name = file.display().to_string();
        let formatted = himg_lang::format_bytes(&name, bytes.clone())
            .map_err(|d| Error::Load(LoadError::Language(d)))?;
        if formatted.as_bytes() == bytes {
            continue;
        }
        if args.check {
            printer.status("Unformatted", &name);
            unformatted.push(name);
        } else {
            let tmp = file.with_extension("himg.fmt-tmp");
            std::fs::write(&tmp, &formatted)
                .and_then(|_| std::fs::rename(&tmp, file))
                .map_err(|source| Error::Io {
                    path: file.clone(),
                    source,
                })?;
            printer.status("Formatted", &name);
        }
    }
    if unformatted.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        printer.rendered(&format!(
            "hint: run `himg fmt {}` to format\n",
            unformatted.join(" ")
        ));
        Ok(ExitCode::from(1))
    }
}
