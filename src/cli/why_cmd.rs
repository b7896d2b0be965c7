//! `himg why FILE IMAGE PACKAGE`: the dependency paths from an image's requested packages to one
//! package (or what needed an excluded one).

use std::process::ExitCode;

use super::args::{GlobalArgs, WhyArgs};
use super::{Error, Printer, session};
use crate::ops::why::{WhyOptions, render, why as explain};

pub fn why(global: &GlobalArgs, args: &WhyArgs, printer: &Printer) -> Result<ExitCode, Error> {
    let opts = WhyOptions {
        file: args.file.clone(),
        image: args.image.clone(),
        package: args.package.clone(),
        arch: args.arch.clone(),
        all: args.all,
    };
    let answer = explain(&session(global, printer), &opts)?;
    if args.json {
        printer.json(&serde_json::to_value(&answer).unwrap_or_default());
    } else {
        printer.data(&render(&answer));
    }
    Ok(ExitCode::SUCCESS)
}
