//! The command line: argument parsing, one function per command, errors mapped to exit codes.
//!
//! Exit codes (documented in the book): 0 success; 1 the input is wrong (diagnostics, unformatted
//! files); 2 usage error; 3 a build or I/O failure; 4 the store is inconsistent or incompatible; 5 an
//! image violates its declared policy; 6 an image test failed; 10 `update --check` found updates;
//! 11 `scan --fail-on` (or `promote --fail-on`) found vulnerabilities at or above the threshold;
//! 12 `promote --require-stage` found no trusted record of the required stage; 13 `provenance
//! --verify` found no attached provenance, or none signed by a trusted key about the image.

// A CLI error is built once per process, on the way out: its size does not matter.
#![allow(clippy::result_large_err)]

mod affected_cmd;
mod args;
mod audit_cmd;
mod build;
mod cache_cmd;
mod config_cmd;
mod debian_cmd;
mod docs_cmd;
mod error;
mod image_cmd;
mod inventory_cmd;
mod key_cmd;
mod lang_cmd;
mod promote_cmd;
mod provenance_cmd;
mod registry_cmd;
mod store_cmd;
mod test_cmd;
mod vuln_cmd;
mod why_cmd;

use std::process::ExitCode;

use clap::Parser;

pub(crate) use crate::ops::{Error, Session};
pub use crate::printer::Printer;
pub use args::{BuildArgs, Cli, ColorChoice, Command, LockArgs, OutputFormat, UpdateArgs};

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::SUCCESS
                }
                _ => ExitCode::from(2),
            };
        }
    };
    let printer = Printer::new(cli.global.quiet, cli.global.color.into());
    match run(&cli, &printer) {
        Ok(code) => code,
        Err(err) => {
            match &err {
                Error::Load(crate::load::LoadError::Language(diags)) => {
                    printer.rendered(&diags.render());
                }
                other => printer.error(other, error::hint(other).as_deref()),
            }
            ExitCode::from(error::exit_code(&err))
        }
    }
}

fn run(cli: &Cli, printer: &Printer) -> Result<ExitCode, Error> {
    match &cli.command {
        Command::Check(a) => lang_cmd::check(&cli.global, a, printer),
        Command::Fmt(a) => lang_cmd::fmt(a, printer),
        Command::Eval(a) => lang_cmd::eval(&cli.global, a, printer),
        Command::Build(a) => build::build(&cli.global, a, printer),
        Command::Graph(a) => build::graph(&cli.global, a, printer),
        Command::Log(a) => build::log(&cli.global, a, printer),
        Command::Test(a) => test_cmd::test(&cli.global, a, printer),
        Command::Run(a) => test_cmd::run(&cli.global, a, printer),
        Command::Push(a) => registry_cmd::push(&cli.global, a, printer),
        Command::Pull(a) => registry_cmd::pull(a, printer),
        Command::Lock(a) => debian_cmd::lock(&cli.global, a, printer),
        Command::Update(a) => debian_cmd::update(&cli.global, a, printer),
        Command::Why(a) => why_cmd::why(&cli.global, a, printer),
        Command::Affected(a) => affected_cmd::affected(&cli.global, a, printer),
        Command::Inventory(a) => inventory_cmd::inventory(&cli.global, a, printer),
        Command::Inspect(a) => image_cmd::inspect(&cli.global, a, printer),
        Command::Diff(a) => image_cmd::diff(&cli.global, a, printer),
        Command::Store(s) => store_cmd::run(&cli.global, s, printer),
        Command::Promote(a) => promote_cmd::promote(&cli.global, a, printer),
        Command::Key(k) => key_cmd::key(k, printer),
        Command::Config(a) => config_cmd::config(a, printer),
        Command::Cache(c) => cache_cmd::run(&cli.global, c, printer),
        Command::Sbom(a) => audit_cmd::sbom(&cli.global, a, printer),
        Command::Provenance(a) => provenance_cmd::provenance(&cli.global, a, printer),
        Command::Audit(a) => audit_cmd::audit(&cli.global, a, printer),
        Command::Scan(a) => vuln_cmd::scan(&cli.global, a, printer),
        Command::Vulndb(c) => vuln_cmd::vulndb(&cli.global, c, printer),
        Command::Completions(a) => docs_cmd::completions(a, printer),
        Command::Man(a) => docs_cmd::man(a, printer),
    }
}

/// The session of one command: the store, project root and printer the global flags chose.
fn session<'p>(global: &args::GlobalArgs, printer: &'p Printer) -> Session<'p> {
    Session::new(printer)
        .with_store(global.store.clone())
        .with_project_root(global.project_root.clone())
}
