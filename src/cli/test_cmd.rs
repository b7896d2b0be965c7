//! `himg test` (build if needed, run the images' `test` blocks) and `himg run` (an image's entrypoint
//! or a command in the same sandbox, on the terminal).

use std::process::ExitCode;
use std::time::Instant;

use himg_lang::TestSpec;
use serde_json::json;

use super::args::{GlobalArgs, RunArgs, TestArgs};
use super::{Error, Printer, open_store};
use crate::image::ImageView;
use crate::load::load_file;
use crate::testing::{self, Outcome, Target, cache::ResultCache};

/// The OCI spelling of the architecture this himg runs on (tests run natively only).
fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// Each selected image's view for the host architecture, with the spec that declares its tests.
fn views(
    layout: &std::path::Path,
    specs: &[himg_lang::ImageSpec],
) -> Result<Vec<(himg_lang::ImageSpec, ImageView)>, Error> {
    let source = crate::image::ImageSource::open(layout)?;
    let all = source.images()?;
    let arch = host_architecture();
    let mut out = Vec::new();
    for spec in specs {
        let view = all
            .iter()
            .find(|v| {
                v.name.as_deref() == Some(spec.name.as_str()) && v.config.architecture == arch
            })
            .cloned()
            .ok_or_else(|| {
                Error::Layout(format!(
                    "image `{}` has no {arch} variant to run on this machine",
                    spec.name
                ))
            })?;
        out.push((spec.clone(), view));
    }
    Ok(out)
}

/// Extracts the rootfs of `view` into a new temporary directory.
fn extract(layout: &std::path::Path, view: &ImageView) -> Result<tempfile::TempDir, Error> {
    let dir = tempfile::Builder::new()
        .prefix("himg-rootfs-")
        .tempdir()
        .map_err(|e| Error::Io {
            path: std::env::temp_dir(),
            source: e,
        })?;
    let source = crate::image::ImageSource::open(layout)?;
    let root = dir.path().join("rootfs");
    source.extract_rootfs(view, &root)?;
    testing::sandbox::own_tree(&root).map_err(|e| Error::Io {
        path: root.clone(),
        source: e,
    })?;
    Ok(dir)
}

pub fn test(global: &GlobalArgs, args: &TestArgs, printer: &Printer) -> Result<ExitCode, Error> {
    let started = Instant::now();
    let loaded = load_file(&args.file, global.project_root.as_deref())?;
    let specs = crate::ops::compile::select(&loaded, &args.images, &args.file)?;
    let built = crate::ops::build::materialize(
        &super::session(global, printer),
        &args.file,
        &args.images,
        false,
    )?;
    let store = open_store(global)?;
    let cache = (!args.no_cache).then(|| ResultCache::new(store.root()));
    drop(store);

    let mut outcomes: Vec<Outcome> = Vec::new();
    for (spec, view) in views(&built.layout(), &specs)? {
        if spec.tests.is_empty() {
            printer.warn(&format!("image `{}` declares no tests", spec.name));
            continue;
        }
        // Only tests without a cached result need the rootfs.
        let pending: Vec<&TestSpec> = spec
            .tests
            .iter()
            .filter(|t| {
                cache
                    .as_ref()
                    .is_none_or(|c| c.get(&view.digest, t).is_none())
            })
            .collect();
        let rootfs = if pending.is_empty() {
            None
        } else {
            Some(extract(&built.layout(), &view)?)
        };
        let empty = std::path::PathBuf::new();
        let target = Target {
            image: &spec.name,
            view: &view,
            rootfs: &rootfs.as_ref().map_or(empty, |d| d.path().join("rootfs")),
        };
        let results = testing::run_all(&target, &spec.tests, cache.as_ref());
        for o in &results {
            report(printer, o);
        }
        outcomes.extend(results);
    }

    if let Some(path) = &args.junit {
        std::fs::write(path, testing::junit::report(&outcomes)).map_err(|e| Error::Io {
            path: path.clone(),
            source: e,
        })?;
    }
    let failed = outcomes.iter().filter(|o| !o.passed).count();
    let cached = outcomes.iter().filter(|o| o.cached).count();
    if args.json {
        printer.json(&json!({
            "tests": outcomes,
            "passed": outcomes.len() - failed,
            "failed": failed,
            "cached": cached,
        }));
    }
    printer.status(
        "Tested",
        &format!(
            "{} test{}: {} passed ({cached} cached), {failed} failed, in {:.2}s",
            outcomes.len(),
            if outcomes.len() == 1 { "" } else { "s" },
            outcomes.len() - failed,
            started.elapsed().as_secs_f64()
        ),
    );
    if failed > 0 {
        return Err(Error::TestsFailed {
            failed,
            total: outcomes.len(),
        });
    }
    Ok(ExitCode::SUCCESS)
}

/// One line per test; the failures of a failed test with their diffs.
fn report(printer: &Printer, o: &Outcome) {
    let name = format!("{} › {}", o.image, o.test);
    if o.passed {
        let how = if o.cached {
            "cached".to_owned()
        } else {
            format!("{:.2}s", o.duration_ms as f64 / 1000.0)
        };
        printer.status("Pass", &format!("{name} ({how})"));
        return;
    }
    printer.fail("Fail", &name);
    let mut text = String::new();
    for f in &o.failures {
        text.push_str(&format!("    {}: {}\n", f.check, f.message));
        if let Some(diff) = &f.diff {
            for line in diff.lines() {
                text.push_str("      ");
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    printer.rendered(&text);
}

pub fn run(global: &GlobalArgs, args: &RunArgs, printer: &Printer) -> Result<ExitCode, Error> {
    let loaded = load_file(&args.file, global.project_root.as_deref())?;
    let names: Vec<String> = args.image.iter().cloned().collect();
    let specs = crate::ops::compile::select(&loaded, &names, &args.file)?;
    let Some(spec) = specs.first().filter(|_| specs.len() == 1) else {
        return Err(Error::NoSuchImage {
            name: String::new(),
            file: args.file.display().to_string(),
            available: specs.iter().map(|s| s.name.clone()).collect(),
        });
    };
    let built = crate::ops::build::materialize(
        &super::session(global, printer),
        &args.file,
        &names,
        false,
    )?;
    let (_, view) = views(&built.layout(), std::slice::from_ref(spec))?
        .into_iter()
        .next()
        .ok_or_else(|| Error::Layout("no image was built".into()))?;
    let rootfs = extract(&built.layout(), &view)?;
    let rc = &view.config.config;
    let argv = if args.command.is_empty() {
        rc.entrypoint.iter().chain(&rc.cmd).cloned().collect()
    } else {
        args.command.clone()
    };
    if argv.is_empty() {
        return Err(Error::Layout(format!(
            "image `{}` has no entrypoint or cmd: give a command after `--`",
            spec.name
        )));
    }
    let root = rootfs.path().join("rootfs");
    let target = Target {
        image: &spec.name,
        view: &view,
        rootfs: &root,
    };
    let cmd = testing::run::sandbox_command(
        &target,
        argv,
        args.user.as_deref(),
        &[],
        None,
        args.network,
    )?;
    let sandbox = testing::Sandbox::new(&root)?;
    printer.status(
        "Running",
        &format!(
            "{} {} in the sandbox{}",
            spec.name,
            view.digest,
            if args.network { " (with network)" } else { "" }
        ),
    );
    let code = sandbox.run_interactive(&cmd)?;
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}
