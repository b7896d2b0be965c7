//! `himg test` (build if needed, run the images' `test` blocks) and `himg run` (an image's entrypoint
//! or a command in the same sandbox, on the terminal).

use std::process::ExitCode;

use super::args::{GlobalArgs, RunArgs, TestArgs};
use super::{Error, Printer, session};
use crate::ops::test::{self, RunOptions, TestOptions};

pub fn test(global: &GlobalArgs, args: &TestArgs, printer: &Printer) -> Result<ExitCode, Error> {
    let opts = TestOptions {
        file: args.file.clone(),
        images: args.images.clone(),
        junit: args.junit.clone(),
        no_cache: args.no_cache,
    };
    let session = session(global, printer);
    let run = if crate::ops::workspace::is_workspace(&args.file) {
        let ws = crate::ops::workspace::discover(&session, &args.file)?;
        crate::ops::workspace::test(&session, &ws, &opts)?
    } else {
        test::test(&session, &opts)?
    };
    if args.json {
        printer.json(&run.json());
    }
    printer.status("Tested", &run.summary());
    match run.failed() {
        0 => Ok(ExitCode::SUCCESS),
        failed => Err(Error::TestsFailed {
            failed,
            total: run.outcomes.len(),
        }),
    }
}

pub fn run(global: &GlobalArgs, args: &RunArgs, printer: &Printer) -> Result<ExitCode, Error> {
    let opts = RunOptions {
        file: args.file.clone(),
        image: args.image.clone(),
        network: args.network,
        user: args.user.clone(),
        command: args.command.clone(),
    };
    let code = test::run(&session(global, printer), &opts)?;
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}
