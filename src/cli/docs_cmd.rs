//! `himg completions SHELL` and `himg man [--out DIR]`: shell completion scripts and manual pages,
//! generated from the command-line definitions so they never drift from them.

use std::path::Path;
use std::process::ExitCode;

use clap::CommandFactory;

use super::args::{Cli, CompletionsArgs, ManArgs};
use super::{Error, Printer};

/// Prints the completion script of `args.shell` on stdout.
pub fn completions(args: &CompletionsArgs, printer: &Printer) -> Result<ExitCode, Error> {
    let mut cmd = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "himg", &mut script);
    printer.data(&String::from_utf8_lossy(&script));
    Ok(ExitCode::SUCCESS)
}

/// Prints `himg.1`, or writes every command's page into `--out`.
pub fn man(args: &ManArgs, printer: &Printer) -> Result<ExitCode, Error> {
    let cmd = Cli::command();
    match &args.out {
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd)
                .render(&mut page)
                .map_err(|source| io_error(Path::new("-"), source))?;
            printer.data(&String::from_utf8_lossy(&page));
        }
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|source| io_error(dir, source))?;
            clap_mangen::generate_to(cmd, dir).map_err(|source| io_error(dir, source))?;
            printer.status("Wrote", &format!("manual pages to {}", dir.display()));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn io_error(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}
