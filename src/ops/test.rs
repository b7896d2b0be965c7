//! Testing images: build what is needed, run the images' `test` blocks in the sandbox (with cached
//! results), and run an image's entrypoint or a command in the same sandbox on the terminal.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use himg_lang::TestSpec;
use serde_json::json;

use super::{Error, Session};
use crate::image::ImageView;
use crate::printer::Printer;
use crate::testing::{self, Outcome, Target, cache::ResultCache};

/// Which images `test` tests and how.
#[derive(Debug, Clone, Default)]
pub struct TestOptions {
    pub file: PathBuf,
    /// Only these images (default: every image the file declares).
    pub images: Vec<String>,
    /// Also write a JUnit XML report to this file.
    pub junit: Option<PathBuf>,
    /// Run every test, ignoring cached results.
    pub no_cache: bool,
}

/// Every test's outcome, in declaration order, and how long it all took.
#[derive(Debug, Clone)]
pub struct TestRun {
    pub outcomes: Vec<Outcome>,
    pub elapsed: Duration,
}

impl TestRun {
    pub fn failed(&self) -> usize {
        self.outcomes.iter().filter(|o| !o.passed).count()
    }

    pub fn passed(&self) -> usize {
        self.outcomes.len() - self.failed()
    }

    pub fn cached(&self) -> usize {
        self.outcomes.iter().filter(|o| o.cached).count()
    }

    /// The `test --json` report.
    pub fn json(&self) -> serde_json::Value {
        json!({
            "tests": self.outcomes,
            "passed": self.passed(),
            "failed": self.failed(),
            "cached": self.cached(),
        })
    }

    /// `N tests: P passed (C cached), F failed, in S s`.
    pub fn summary(&self) -> String {
        let n = self.outcomes.len();
        format!(
            "{n} test{}: {} passed ({} cached), {} failed, in {:.2}s",
            if n == 1 { "" } else { "s" },
            self.passed(),
            self.cached(),
            self.failed(),
            self.elapsed.as_secs_f64()
        )
    }
}

/// Builds the selected images (reusing the store) and runs their tests, one status line per test;
/// a failed test is an outcome, not an error.
pub fn test(session: &Session<'_>, opts: &TestOptions) -> Result<TestRun, Error> {
    let started = Instant::now();
    let printer = session.printer();
    let loaded = session.load(&opts.file)?;
    let specs = super::compile::select(&loaded, &opts.images, &opts.file)?;
    let built = super::build::materialize(session, &opts.file, &opts.images, false)?;
    let store = session.open_store()?;
    let cache = (!opts.no_cache).then(|| ResultCache::new(store.root()));
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

    if let Some(path) = &opts.junit {
        std::fs::write(path, testing::junit::report(&outcomes)).map_err(|e| Error::Io {
            path: path.clone(),
            source: e,
        })?;
    }
    Ok(TestRun {
        outcomes,
        elapsed: started.elapsed(),
    })
}

/// What `run` runs.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub file: PathBuf,
    /// The image (required when the file declares several).
    pub image: Option<String>,
    /// Share the host's network with the sandbox.
    pub network: bool,
    /// Run as this user (`name`, `uid`, `uid:gid`) instead of the image's.
    pub user: Option<String>,
    /// The command instead of the entrypoint and cmd.
    pub command: Vec<String>,
}

/// Builds the image and runs its entrypoint (or `opts.command`) in the sandbox, attached to the
/// terminal; returns the command's exit status.
pub fn run(session: &Session<'_>, opts: &RunOptions) -> Result<i32, Error> {
    let loaded = session.load(&opts.file)?;
    let names: Vec<String> = opts.image.iter().cloned().collect();
    let specs = super::compile::select(&loaded, &names, &opts.file)?;
    let Some(spec) = specs.first().filter(|_| specs.len() == 1) else {
        return Err(Error::NoSuchImage {
            name: String::new(),
            file: opts.file.display().to_string(),
            available: specs.iter().map(|s| s.name.clone()).collect(),
        });
    };
    let built = super::build::materialize(session, &opts.file, &names, false)?;
    let (_, view) = views(&built.layout(), std::slice::from_ref(spec))?
        .into_iter()
        .next()
        .ok_or_else(|| Error::Layout("no image was built".into()))?;
    let rootfs = extract(&built.layout(), &view)?;
    let rc = &view.config.config;
    let argv = if opts.command.is_empty() {
        rc.entrypoint.iter().chain(&rc.cmd).cloned().collect()
    } else {
        opts.command.clone()
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
        opts.user.as_deref(),
        &[],
        None,
        opts.network,
    )?;
    let sandbox = testing::Sandbox::new(&root)?;
    session.printer().status(
        "Running",
        &format!(
            "{} {} in the sandbox{}",
            spec.name,
            view.digest,
            if opts.network { " (with network)" } else { "" }
        ),
    );
    Ok(sandbox.run_interactive(&cmd)?)
}

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
