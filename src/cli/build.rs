//! `himg build` (and `--check`), `himg graph` and `himg log`.

use std::process::ExitCode;

use super::args::{BuildArgs, GlobalArgs, GraphArgs, LogArgs};
use super::{Error, Printer, session};
use crate::ops::build::BuildOptions;
use crate::ops::packages::LockMode;
use crate::ops::{self, compile::compile_file};

pub fn build(global: &GlobalArgs, args: &BuildArgs, printer: &Printer) -> Result<ExitCode, Error> {
    if ops::workspace::is_workspace(&args.file) {
        return build_workspace(global, args, printer);
    }
    if args.shard.is_some() {
        return Err(Error::Workspace {
            dir: args.file.clone(),
            problem: "is one file: --shard splits a workspace (a directory)".into(),
        });
    }
    let session = session(global, printer);
    let opts = options(args);
    let built = ops::build::build(&session, &opts)?;
    after_build(global, args, &opts, &built, printer)?;
    if args.json {
        printer.json(&built.json());
    }
    built.print(printer);
    if args.check {
        check(&built, printer)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `himg build DIR`: every `.himg` file under DIR, in dependency order, one report.
fn build_workspace(
    global: &GlobalArgs,
    args: &BuildArgs,
    printer: &Printer,
) -> Result<ExitCode, Error> {
    if !args.images.is_empty() || !args.tags.is_empty() {
        return Err(Error::Workspace {
            dir: args.file.clone(),
            problem: "is a workspace: it builds every image of every file (--image selects, and --tag names, within one file)".into(),
        });
    }
    let session = session(global, printer);
    let mut ws = ops::workspace::discover(&session, &args.file)?;
    if let Some(shard) = args.shard {
        ws = ws.shard(shard);
    }
    let template = options(args);
    let built = ops::workspace::build(&session, &ws, &template, |m| {
        let opts = BuildOptions {
            out: m.built.out.clone(),
            ..template.clone()
        };
        after_build(global, args, &opts, &m.built, printer)?;
        if !args.json {
            m.built.print(printer);
        }
        if args.check {
            check(&m.built, printer)?;
        }
        Ok(())
    })?;
    let report = ops::workspace::build_json(&args.file, &built);
    if args.json {
        printer.json(&report);
    }
    printer.status(
        "Workspace",
        &format!(
            "{}: {} files, {} images, {} derivations built",
            args.file.display(),
            built.len(),
            report["images"].as_array().map_or(0, Vec::len),
            report["built"]
        ),
    );
    Ok(ExitCode::SUCCESS)
}

/// The build options `himg build` asks for.
fn options(args: &BuildArgs) -> BuildOptions {
    BuildOptions {
        images: args.images.clone(),
        format: args.format.into(),
        arch: args.arch.clone(),
        locked: args.locked,
        cache: args.cache.options(),
        analyse: !(args.no_sbom && args.no_policy),
        tags: args.tags.clone(),
        ..BuildOptions::new(&args.file, &args.out)
    }
}

/// What follows a build: its outputs pushed to a cache (`--push-to`), SBOMs written and the
/// policy judged.
fn after_build(
    global: &GlobalArgs,
    args: &BuildArgs,
    opts: &BuildOptions,
    built: &ops::build::Built,
    printer: &Printer,
) -> Result<(), Error> {
    if let Some(url) = &args.push_to {
        let outputs = built.realised_outputs()?;
        ops::cache::push_outputs(&built.store, url, &opts.cache, &outputs, printer)?;
    }
    let vex = crate::ops::audit::declared_vex(&built.loaded);
    crate::ops::audit::after_build(
        &session(global, printer),
        &built.store,
        &built.analysed,
        &built.specs,
        &crate::ops::vuln::VulnContext {
            lock: built.lock.as_ref(),
            vex: &vex,
        },
        crate::ops::audit::AfterBuild {
            sboms: (!args.no_sbom)
                .then(|| crate::ops::audit::sbom_dir(&opts.out))
                .as_deref(),
            check_policy: !args.no_policy,
        },
        printer,
    )?;
    Ok(())
}

/// `--check`: every build step run again, its outputs compared with the recorded ones.
fn check(built: &ops::build::Built, printer: &Printer) -> Result<(), Error> {
    let outcomes = ops::builds::check(&built.store, &built.graph)?;
    let mut differing = Vec::new();
    for outcome in &outcomes {
        if outcome.reproducible {
            printer.status(
                "Checked",
                &format!(
                    "build {}: same outputs ({})",
                    outcome.build, outcome.recorded
                ),
            );
            continue;
        }
        printer.fail(
            "Differs",
            &format!(
                "build {}: {} then {}",
                outcome.build, outcome.recorded, outcome.rebuilt
            ),
        );
        for difference in &outcome.differences {
            printer.rendered(&format!("{difference}\n"));
        }
        differing.push(outcome.build.clone());
    }
    if differing.is_empty() {
        Ok(())
    } else {
        Err(Error::NotReproducible { builds: differing })
    }
}

pub fn log(global: &GlobalArgs, args: &LogArgs, printer: &Printer) -> Result<ExitCode, Error> {
    let session = session(global, printer);
    let log = ops::builds::log(
        &session,
        &ops::builds::LogOptions {
            file: args.file.clone(),
            build: args.build.clone(),
        },
    )?;
    if log.failed {
        printer.warn(&format!("build {} failed; its last run's log:", log.build));
    }
    printer.data(&log.text);
    Ok(ExitCode::SUCCESS)
}

pub fn graph(global: &GlobalArgs, args: &GraphArgs, printer: &Printer) -> Result<ExitCode, Error> {
    let session = session(global, printer);
    let store = session.open_store()?;
    let graph = compile_file(&session, &args.file, &args.images, &store, LockMode::Locked)?.graph;
    if args.json {
        printer.json(&graph.to_json());
        return Ok(ExitCode::SUCCESS);
    }
    let view = ops::compile::dot_view(&graph, &store, &args.kinds, args.cluster, args.stored)?;
    printer.data(&crate::plan::dot::render(&graph, &view));
    Ok(ExitCode::SUCCESS)
}
