//! `himg build` and `himg graph`.

use std::process::ExitCode;

use super::args::{BuildArgs, GlobalArgs, GraphArgs};
use super::{Error, Printer, session};
use crate::ops::build::BuildOptions;
use crate::ops::packages::LockMode;
use crate::ops::{self, compile::compile_file};

pub fn build(global: &GlobalArgs, args: &BuildArgs, printer: &Printer) -> Result<ExitCode, Error> {
    let session = session(global, printer);
    let opts = BuildOptions {
        images: args.images.clone(),
        format: args.format.into(),
        arch: args.arch.clone(),
        locked: args.locked,
        cache: args.cache.options(),
        analyse: !(args.no_sbom && args.no_policy),
        ..BuildOptions::new(&args.file, &args.out)
    };
    let built = ops::build::build(&session, &opts)?;
    if let Some(url) = &args.push_to {
        let outputs = built.realised_outputs()?;
        ops::cache::push_outputs(&built.store, url, &opts.cache, &outputs, printer)?;
    }
    let vex = crate::ops::audit::declared_vex(&built.loaded);
    crate::ops::audit::after_build(
        &super::session(global, printer),
        &built.store,
        &built.analysed,
        &built.specs,
        &crate::ops::vuln::VulnContext {
            lock: built.lock.as_ref(),
            vex: &vex,
        },
        crate::ops::audit::AfterBuild {
            sboms: (!args.no_sbom)
                .then(|| crate::ops::audit::sbom_dir(&args.out))
                .as_deref(),
            check_policy: !args.no_policy,
        },
        printer,
    )?;
    if args.json {
        printer.json(&built.json());
    }
    built.print(printer);
    Ok(ExitCode::SUCCESS)
}

pub fn graph(global: &GlobalArgs, args: &GraphArgs, printer: &Printer) -> Result<ExitCode, Error> {
    let session = session(global, printer);
    let store = session.open_store()?;
    let graph = compile_file(&session, &args.file, &args.images, &store, LockMode::Locked)?.graph;
    if args.json {
        printer.json(&graph.to_json());
    } else {
        printer.data(&graph.to_dot());
    }
    Ok(ExitCode::SUCCESS)
}
