//! `himg sbom` and `himg audit`: an image target's SBOM, and its images judged by their policies.

use std::process::ExitCode;

use super::args::{AuditArgs, GlobalArgs, SbomArgs};
use super::{Error, Printer, session};
use crate::ops::audit::{self, AuditOptions, SbomOptions, print_reports};

pub fn sbom(global: &GlobalArgs, args: &SbomArgs, printer: &Printer) -> Result<ExitCode, Error> {
    let opts = SbomOptions {
        target: args.target.clone(),
        format: args.format.into(),
        image: args.image.clone(),
        arch: args.arch.clone(),
        insecure: args.insecure,
    };
    let document = audit::sbom(&session(global, printer), &opts)?;
    match &args.out {
        Some(path) => document.write(path, printer)?,
        None => printer.data(&document.text),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn audit(global: &GlobalArgs, args: &AuditArgs, printer: &Printer) -> Result<ExitCode, Error> {
    let opts = AuditOptions {
        target: args.target.clone(),
        images: args.images.clone(),
        policy: args.policy.clone(),
        insecure: args.insecure,
    };
    let audited = audit::audit(&session(global, printer), &opts)?;
    if args.json {
        printer.json(&audited.json());
    }
    let failed = print_reports(&audited.reports, printer);
    if failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(Error::PolicyViolation { images: failed })
    }
}
