//! `himg sbom` and `himg audit`, and what `himg build` does after writing its output: SBOMs beside
//! the output, and each image's policy evaluated.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use himg_lang::ImageSpec;
use serde_json::json;

use super::args::{AuditArgs, GlobalArgs, SbomArgs, SbomFormat};
use super::{CliError, Printer};
use crate::debian::lockfile::LockFile;
use crate::image::{ImageSource, ImageView};
use crate::policy::{self, Date, Policy};
use crate::sbom::{self, Bom, FileContents, Format};

/// Reads files of one image of an opened source: from its root filesystem unpacked once into a
/// temporary directory (one pass over the layers instead of one per file), else from the layers.
struct Contents<'a> {
    source: &'a ImageSource,
    view: &'a ImageView,
    rootfs: std::cell::OnceCell<Option<tempfile::TempDir>>,
}

impl<'a> Contents<'a> {
    fn new(source: &'a ImageSource, view: &'a ImageView) -> Self {
        Contents {
            source,
            view,
            rootfs: std::cell::OnceCell::new(),
        }
    }
}

impl FileContents for Contents<'_> {
    fn read(&self, path: &str) -> Option<Vec<u8>> {
        let key = path.trim_start_matches('/');
        let entry = self.view.files.get(key)?;
        let rootfs = self.rootfs.get_or_init(|| {
            let dir = tempfile::Builder::new()
                .prefix("himg-rootfs-")
                .tempdir()
                .ok()?;
            let dest = dir.path().join("rootfs");
            self.source.extract_rootfs(self.view, &dest).ok()?;
            Some(dir)
        });
        if let Some(dir) = rootfs
            && entry.kind == crate::image::FileKind::File
            && let Ok(bytes) = std::fs::read(dir.path().join("rootfs").join(key))
            && bytes.len() as u64 == entry.size
        {
            return Some(bytes);
        }
        self.source.read_file(self.view, key).ok().flatten()
    }
}

/// The images of a target: a `.himg` file (built into a temporary layout) or a layout/archive.
struct Target {
    source: ImageSource,
    lock: Option<LockFile>,
    specs: Vec<ImageSpec>,
    /// Declared OpenVEX files per image (for the `max-vulnerabilities` rule).
    vex: std::collections::BTreeMap<String, Vec<PathBuf>>,
    /// Keeps a materialised layout alive.
    _materialized: Option<super::build::Materialized>,
}

fn open_target(
    global: &GlobalArgs,
    target: &Path,
    images: &[String],
    printer: &Printer,
) -> Result<Target, CliError> {
    if super::build::is_himg_file(target) {
        let loaded = crate::load::load_file(target)?;
        let m = super::build::materialize(global, target, images, printer)?;
        let source = ImageSource::open(&m.layout())?;
        Ok(Target {
            source,
            vex: declared_vex(&loaded),
            lock: m.lock.clone(),
            specs: loaded.evaluated.images.clone(),
            _materialized: Some(m),
        })
    } else {
        Ok(Target {
            source: ImageSource::open(target)?,
            lock: None,
            specs: Vec::new(),
            vex: Default::default(),
            _materialized: None,
        })
    }
}

/// The OpenVEX files each image of a loaded file declares, resolved to paths.
pub(super) fn declared_vex(
    loaded: &crate::load::Loaded,
) -> std::collections::BTreeMap<String, Vec<PathBuf>> {
    loaded
        .evaluated
        .images
        .iter()
        .map(|spec| {
            let files = spec.vex.iter().map(|p| loaded.loader.resolve(p)).collect();
            (spec.name.clone(), files)
        })
        .collect()
}

/// The name of an image of a source (its ref name, else its digest).
fn name_of(view: &ImageView) -> String {
    view.name
        .clone()
        .unwrap_or_else(|| view.digest.trim_start_matches("sha256:")[..12].to_string())
}

/// Builds the SBOM model of one image.
fn bom(source: &ImageSource, view: &ImageView, lock: Option<&LockFile>) -> Bom {
    let name = name_of(view);
    let locked_image = lock.and_then(|l| l.images.get(&name));
    let locked = locked_image
        .and_then(|i| i.architectures.get(&view.config.architecture))
        .cloned()
        .unwrap_or_default();
    let codenames: Vec<String> = locked_image
        .map(|i| {
            i.repositories
                .iter()
                .flat_map(|r| r.suites.iter().filter_map(|s| s.codename.clone()))
                .collect()
        })
        .unwrap_or_default();
    Bom::new(&sbom::Input {
        view,
        name: &name,
        locked: &locked,
        codenames: &codenames,
        contents: &Contents::new(source, view),
    })
}

/// Writes `DIR/<image>-<arch>.spdx.json` and `.cdx.json` for every image of `source`.
fn write_sboms(
    source: &ImageSource,
    views: &[ImageView],
    lock: Option<&LockFile>,
    dir: &Path,
) -> Result<Vec<PathBuf>, CliError> {
    let io = |path: &Path, source: std::io::Error| CliError::Io {
        path: path.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let mut written = Vec::new();
    for view in views {
        let model = bom(source, view, lock);
        for format in [Format::Spdx, Format::CycloneDx] {
            let path = dir.join(format!(
                "{}-{}.{}",
                name_of(view),
                view.config.architecture,
                format.suffix()
            ));
            std::fs::write(&path, format.render(&model)).map_err(|e| io(&path, e))?;
            written.push(path);
        }
    }
    Ok(written)
}

/// `OUT` → `OUT.sbom` (a sibling, so an OCI layout stays a pure layout).
pub fn sbom_dir(out: &Path) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(".sbom");
    PathBuf::from(name)
}

pub fn sbom(global: &GlobalArgs, args: &SbomArgs, printer: &Printer) -> Result<ExitCode, CliError> {
    let images: Vec<String> = args.image.iter().cloned().collect();
    let target = open_target(global, &args.target, &images, printer)?;
    let all = target.source.images()?;
    let views: Vec<&ImageView> = all
        .iter()
        .filter(|v| {
            args.image
                .as_ref()
                .is_none_or(|n| v.name.as_ref() == Some(n))
        })
        .filter(|v| {
            args.arch
                .as_ref()
                .is_none_or(|a| &v.config.architecture == a)
        })
        .collect();
    let [view] = views.as_slice() else {
        return Err(CliError::Layout(format!(
            "`{}` holds {} matching images ({}); choose one with --image and --arch",
            args.target.display(),
            views.len(),
            views
                .iter()
                .map(|v| format!("{} {}", name_of(v), v.config.architecture))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let format = match args.format {
        SbomFormat::Spdx => Format::Spdx,
        SbomFormat::Cyclonedx => Format::CycloneDx,
    };
    let text = format.render(&bom(&target.source, view, target.lock.as_ref()));
    match &args.out {
        Some(path) => {
            std::fs::write(path, &text).map_err(|source| CliError::Io {
                path: path.clone(),
                source,
            })?;
            printer.status(
                "Wrote",
                &format!("{} SBOM → {}", format.suffix(), path.display()),
            );
        }
        None => printer.data(&text),
    }
    Ok(ExitCode::SUCCESS)
}

/// Evaluates the policies of `views` (the images of `source`); `specs` give declared policies by
/// image name.
fn audit_source(
    global: &GlobalArgs,
    vuln: &super::vuln_cmd::VulnContext<'_>,
    source: &ImageSource,
    views: &[ImageView],
    specs: &[ImageSpec],
    forced: Option<&str>,
    only: &[String],
) -> Result<Vec<policy::Report>, CliError> {
    let today = Date::today().map_err(|e| CliError::Layout(e.to_string()))?;
    let mut reports = Vec::new();
    for view in views {
        let name = name_of(view);
        if !only.is_empty() && !only.contains(&name) {
            continue;
        }
        let spec = specs.iter().find(|s| s.name == name);
        let policy = match forced {
            Some(b) => Policy::named(b, true).ok_or_else(|| {
                CliError::Layout(format!(
                    "unknown policy `{b}`: use baseline, strict or none"
                ))
            })?,
            None => Policy::from_spec(spec.and_then(|s| s.policy.as_ref()))
                .map_err(|e| CliError::Layout(e.to_string()))?,
        };
        let counts = if policy.rules.contains(&policy::Rule::MaxVulnerabilities) {
            let os_release = source
                .read_file(view, "etc/os-release")
                .ok()
                .flatten()
                .or_else(|| source.read_file(view, "usr/lib/os-release").ok().flatten())
                .map(|b| String::from_utf8_lossy(&b).into_owned());
            super::vuln_cmd::vulnerability_counts(global, vuln, &name, view, os_release.as_deref())?
        } else {
            None
        };
        reports.push(policy::evaluate(
            &name,
            view,
            &Contents::new(source, view),
            &policy,
            counts.as_deref(),
            today,
        ));
    }
    Ok(reports)
}

/// Prints reports on stderr; returns the images that fail a declared policy.
fn print_reports(reports: &[policy::Report], printer: &Printer) -> Vec<String> {
    let mut failed = Vec::new();
    for r in reports {
        let label = format!("{} ({})", r.image, r.architecture);
        for w in &r.in_force {
            printer.status(
                "Waived",
                &format!(
                    "{label}: `{}` for {} until {}: {}",
                    w.rule.name(),
                    w.target(),
                    w.until,
                    w.reason
                ),
            );
        }
        let lines = r.lines();
        if r.passed() {
            printer.status(
                "Policy",
                &format!(
                    "{label} passes `{}` ({} rules)",
                    r.policy.baseline,
                    r.policy.rules.len()
                ),
            );
        } else if r.policy.declared {
            for l in &lines {
                printer.rendered(&format!("violation: {label}: {l}"));
            }
            failed.push(label);
        } else {
            for l in &lines {
                printer.warn(&format!("{label}: {l}"));
            }
            printer.warn(&format!(
                "{label} declares no `policy`: these are warnings; declare `policy = \"baseline\"` to enforce them"
            ));
        }
    }
    failed
}

pub fn audit(
    global: &GlobalArgs,
    args: &AuditArgs,
    printer: &Printer,
) -> Result<ExitCode, CliError> {
    let target = open_target(global, &args.target, &args.images, printer)?;
    let vuln = super::vuln_cmd::VulnContext {
        lock: target.lock.as_ref(),
        vex: &target.vex,
    };
    let reports = audit_source(
        global,
        &vuln,
        &target.source,
        &target.source.images()?,
        &target.specs,
        args.policy.as_deref(),
        &args.images,
    )?;
    if args.json {
        printer.json(&json!({
            "images": reports.iter().map(|r| r.to_json()).collect::<Vec<_>>(),
            "passed": reports.iter().all(|r| r.passed() || !r.policy.declared),
        }));
    }
    let failed = print_reports(&reports, printer);
    if failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(CliError::PolicyViolation { images: failed })
    }
}

/// After `himg build` wrote `out`: SBOMs into `out.sbom/` and each image's policy.
pub fn after_build(
    global: &GlobalArgs,
    out: &Path,
    specs: &[ImageSpec],
    vuln: &super::vuln_cmd::VulnContext<'_>,
    check_policy: bool,
    write_sbom: bool,
    printer: &Printer,
) -> Result<(), CliError> {
    if !write_sbom && !check_policy {
        return Ok(());
    }
    // Reading the image back decompresses and hashes every layer: once for both steps.
    let source = ImageSource::open(out)?;
    let views = source.images()?;
    if write_sbom {
        let dir = sbom_dir(out);
        let written = write_sboms(&source, &views, vuln.lock, &dir)?;
        printer.status(
            "SBOM",
            &format!("{} files → {}", written.len(), dir.display()),
        );
    }
    if check_policy {
        let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
        let reports = audit_source(global, vuln, &source, &views, specs, None, &names)?;
        let failed = print_reports(&reports, printer);
        if !failed.is_empty() {
            return Err(CliError::PolicyViolation { images: failed });
        }
    }
    Ok(())
}
