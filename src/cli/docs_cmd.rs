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
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    match &args.out {
        None => {
            let mut page = Vec::new();
            page_of(cmd)
                .render(&mut page)
                .map_err(|source| io_error(Path::new("-"), source))?;
            printer.data(&String::from_utf8_lossy(&page));
        }
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|source| io_error(dir, source))?;
            let count = write_pages(cmd, dir).map_err(|source| io_error(dir, source))?;
            printer.status(
                "Wrote",
                &format!("{count} manual pages to {}", dir.display()),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The page of one command, its footer naming himg and its version (not the subcommand's).
fn page_of(cmd: clap::Command) -> clap_mangen::Man {
    clap_mangen::Man::new(cmd).source(format!("himg {}", env!("CARGO_PKG_VERSION")))
}

/// Writes the page of `cmd` and of every subcommand below it into `dir`; returns how many.
fn write_pages(cmd: clap::Command, dir: &Path) -> std::io::Result<usize> {
    let mut count = 1;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        count += write_pages(sub.clone(), dir)?;
    }
    page_of(cmd).generate_to(dir)?;
    Ok(count)
}

fn io_error(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}
