//! `himg vulndb import|status` and `himg scan`: vulnerability data in, findings out.

use std::process::ExitCode;

use super::args::{GlobalArgs, ScanArgs, VulndbCommand};
use super::{Error, Printer, session};
use crate::ops::vuln::{self, ImportOptions, ScanOptions};
use crate::vuln::report::{self, Report};

/// The exit code of `scan --fail-on` when findings reach the threshold.
pub const EXIT_VULNERABLE: u8 = 11;

pub fn vulndb(
    global: &GlobalArgs,
    cmd: &VulndbCommand,
    printer: &Printer,
) -> Result<ExitCode, Error> {
    let session = session(global, printer);
    match cmd {
        VulndbCommand::Import { source, db, json } => {
            let opts = ImportOptions {
                source: source.clone(),
                db: db.clone(),
            };
            let outcome = vuln::import(&session, &opts)?;
            if *json {
                printer.json(&outcome.json());
            }
        }
        VulndbCommand::Status { db, json } => {
            let status = vuln::status(&session, db)?;
            if *json {
                printer.json(&serde_json::to_value(&status).unwrap_or_default());
            } else {
                printer.data(&vuln::render_status(&status));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn scan(global: &GlobalArgs, args: &ScanArgs, printer: &Printer) -> Result<ExitCode, Error> {
    let opts = ScanOptions {
        target: args.target.clone(),
        images: args.images.clone(),
        arch: args.arch.clone(),
        release: args.release.clone(),
        vex: args.vex.clone(),
        db: args.db.clone(),
        insecure: args.insecure,
    };
    let session = session(global, printer);
    let scanned = if crate::ops::workspace::is_workspace(&args.target) {
        let ws = crate::ops::workspace::discover(&session, &args.target)?;
        crate::ops::workspace::scan(&session, &ws, &opts)?
    } else {
        vuln::scan(&session, &opts)?
    };
    let reports = &scanned.reports;
    if args.json {
        printer.json(&report::to_json(reports));
    } else if args.sarif {
        printer.json(&report::to_sarif(
            reports,
            &args.target.display().to_string(),
        ));
    } else {
        let text: Vec<String> = reports.iter().map(Report::table).collect();
        printer.data(&text.join("\n"));
    }
    if let Some(threshold) = args.fail_on {
        let failing = scanned.failing(threshold);
        if failing > 0 {
            printer.rendered(&format!(
                "error: {failing} finding(s) at severity {threshold} or higher (--fail-on {threshold})\nhint: update the packages (`himg update`), or record why the image is not affected in an OpenVEX file (`--vex`)\n"
            ));
            return Ok(ExitCode::from(EXIT_VULNERABLE));
        }
    }
    Ok(ExitCode::SUCCESS)
}
