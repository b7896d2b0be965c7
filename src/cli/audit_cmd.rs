//! `himg sbom` and `himg audit`, and what `himg build` does after writing its output: SBOMs beside
//! the output, and each image's policy evaluated.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use himg_lang::ImageSpec;
use serde_json::json;

use super::args::{AuditArgs, GlobalArgs, SbomArgs, SbomFormat};
use super::{Error, Printer};
use crate::debian::lockfile::LockFile;
use crate::image::{ImageSource, ImageView, RootfsContents};
use crate::ops::build::Analysed;
use crate::policy::{self, Date, Facts, Policy};
use crate::sbom::{self, Bom, Format};

/// The images of a target: a `.himg` file (built into a temporary layout) or a layout/archive.
struct Target {
    source: ImageSource,
    lock: Option<LockFile>,
    specs: Vec<ImageSpec>,
    /// Declared OpenVEX files per image (for the `max-vulnerabilities` rule).
    vex: std::collections::BTreeMap<String, Vec<PathBuf>>,
    /// Keeps a materialised layout alive.
    _materialized: Option<crate::ops::build::Materialized>,
    /// Keeps a pulled layout alive.
    _pulled: Option<super::registry_cmd::PulledTemp>,
}

impl Target {
    /// The analyses of a built `.himg` file's images (empty for a layout, archive or reference).
    fn analysed(&self) -> &[Analysed] {
        self._materialized.as_ref().map_or(&[], |m| &m.analysed)
    }
}

fn open_target(
    global: &GlobalArgs,
    target: &Path,
    images: &[String],
    printer: &Printer,
) -> Result<Target, Error> {
    if crate::ops::compile::is_himg_file(target) {
        let loaded = crate::load::load_file(target, global.project_root.as_deref())?;
        let m =
            crate::ops::build::materialize(&super::session(global, printer), target, images, true)?;
        let source = ImageSource::open(&m.layout())?;
        Ok(Target {
            source,
            vex: declared_vex(&loaded),
            lock: m.lock.clone(),
            specs: loaded.evaluated.images.clone(),
            _materialized: Some(m),
            _pulled: None,
        })
    } else {
        let pulled = match target.to_str() {
            Some(t) => super::registry_cmd::pull_if_reference(t, false, printer)?,
            None => None,
        };
        let path = pulled.as_ref().map_or(target, |p| &p.layout);
        Ok(Target {
            source: ImageSource::open(path)?,
            lock: None,
            specs: Vec::new(),
            vex: Default::default(),
            _materialized: None,
            _pulled: pulled,
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
pub(super) fn bom(source: &ImageSource, view: &ImageView, lock: Option<&LockFile>) -> Bom {
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
        contents: &RootfsContents::new(source, view),
    })
}

/// Places `DIR/<image>-<arch>.spdx.json` and `.cdx.json` for every analysed image: hardlinks to
/// the store's blobs (as OCI layouts hold their blobs), else copies; a file already linked to its
/// blob is left alone.
fn write_sboms(
    store: &himg_store::Store,
    analysed: &[Analysed],
    dir: &Path,
) -> Result<Vec<PathBuf>, Error> {
    use std::os::unix::fs::MetadataExt as _;
    let io = |path: &Path, source: std::io::Error| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    // Like image blobs, an SBOM leaves the store only after its digest is checked.
    let blobs: Vec<himg_store::ObjectRef> = analysed
        .iter()
        .flat_map(|a| a.analysis.sboms.iter())
        .map(|(_, blob)| himg_store::ObjectRef::Blob(*blob))
        .collect();
    store.check_objects(&blobs)?;
    let mut written = Vec::new();
    for a in analysed {
        for (suffix, blob) in &a.analysis.sboms {
            let path = dir.join(format!("{}-{}.{suffix}", a.image, a.architecture));
            let source = store.blob_path(blob);
            let same = |p: &Path| {
                std::fs::symlink_metadata(p)
                    .map(|m| (m.dev(), m.ino()))
                    .ok()
            };
            if same(&path).is_none() || same(&path) != same(&source) {
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io(&path, e)),
                }
                if std::fs::hard_link(&source, &path).is_err() {
                    std::fs::copy(&source, &path).map_err(|e| io(&path, e))?;
                }
            }
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

pub fn sbom(global: &GlobalArgs, args: &SbomArgs, printer: &Printer) -> Result<ExitCode, Error> {
    let images: Vec<String> = args.image.iter().cloned().collect();
    let target = open_target(global, &args.target, &images, printer)?;
    let format = match args.format {
        SbomFormat::Spdx => Format::Spdx,
        SbomFormat::Cyclonedx => Format::CycloneDx,
    };
    // A `.himg` file: the SBOM its build's analysis made (the store's copy, byte for byte).
    if !target.analysed().is_empty() {
        let chosen: Vec<&Analysed> = target
            .analysed()
            .iter()
            .filter(|a| args.image.as_ref().is_none_or(|n| &a.image == n))
            .filter(|a| args.arch.as_ref().is_none_or(|x| &a.architecture == x))
            .collect();
        let [a] = chosen.as_slice() else {
            return Err(Error::Layout(format!(
                "`{}` holds {} matching images ({}); choose one with --image and --arch",
                args.target.display(),
                chosen.len(),
                chosen
                    .iter()
                    .map(|a| format!("{} {}", a.image, a.architecture))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        let blob = a
            .analysis
            .sboms
            .iter()
            .find(|(suffix, _)| *suffix == format.suffix())
            .map(|(_, b)| *b)
            .ok_or_else(|| Error::Layout(format!("no {} document", format.suffix())))?;
        let store = super::open_store(global)?;
        let text = String::from_utf8(
            store
                .read_blob(&blob)
                .map_err(crate::plan::PlanError::from)?,
        )
        .map_err(|_| Error::Layout("the stored SBOM is not UTF-8".into()))?;
        return write_sbom(args, format, &text, printer);
    }
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
        return Err(Error::Layout(format!(
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
    let text = format.render(&bom(&target.source, view, target.lock.as_ref()));
    write_sbom(args, format, &text, printer)
}

/// Prints `text`, or writes it to `--out`.
fn write_sbom(
    args: &SbomArgs,
    format: Format,
    text: &str,
    printer: &Printer,
) -> Result<ExitCode, Error> {
    match &args.out {
        Some(path) => {
            std::fs::write(path, text).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
            printer.status(
                "Wrote",
                &format!("{} SBOM → {}", format.suffix(), path.display()),
            );
        }
        None => printer.data(text),
    }
    Ok(ExitCode::SUCCESS)
}

/// The policy an image is judged by: `forced` (a baseline name) or the image's declared one.
fn policy_for(spec: Option<&ImageSpec>, forced: Option<&str>) -> Result<Policy, Error> {
    match forced {
        Some(b) => Policy::named(b, true).ok_or_else(|| {
            Error::Layout(format!(
                "unknown policy `{b}`: use baseline, strict or none"
            ))
        }),
        None => Policy::from_spec(spec.and_then(|s| s.policy.as_ref()))
            .map_err(|e| Error::Layout(e.to_string())),
    }
}

/// Evaluates `policy` over one image's facts (scanning for vulnerabilities when it limits them).
fn judge(
    global: &GlobalArgs,
    vuln: &super::vuln_cmd::VulnContext<'_>,
    name: &str,
    facts: &Facts,
    policy: &Policy,
    today: Date,
) -> Result<policy::Report, Error> {
    let counts = if policy.rules.contains(&policy::Rule::MaxVulnerabilities) {
        super::vuln_cmd::vulnerability_counts(global, vuln, name, facts)?
    } else {
        None
    };
    Ok(policy::evaluate(
        name,
        facts,
        policy,
        counts.as_deref(),
        today,
    ))
}

fn today() -> Result<Date, Error> {
    Date::today().map_err(|e| Error::Layout(e.to_string()))
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
) -> Result<Vec<policy::Report>, Error> {
    let today = today()?;
    let mut reports = Vec::new();
    for view in views {
        let name = name_of(view);
        if !only.is_empty() && !only.contains(&name) {
            continue;
        }
        let policy = policy_for(specs.iter().find(|s| s.name == name), forced)?;
        let facts = Facts::gather(view, &RootfsContents::new(source, view));
        reports.push(judge(global, vuln, &name, &facts, &policy, today)?);
    }
    Ok(reports)
}

/// The policy gate of `himg promote`: every image of the OCI layout at `layout` judged by the
/// baseline `baseline` (as `himg audit --policy`), the reports printed; returns them and the images
/// that fail.
pub(super) fn policy_gate(
    global: &GlobalArgs,
    layout: &Path,
    baseline: &str,
    printer: &Printer,
) -> Result<(Vec<policy::Report>, Vec<String>), Error> {
    let source = ImageSource::open(layout)?;
    let vex = std::collections::BTreeMap::new();
    let vuln = super::vuln_cmd::VulnContext {
        lock: None,
        vex: &vex,
    };
    let reports = audit_source(
        global,
        &vuln,
        &source,
        &source.images()?,
        &[],
        Some(baseline),
        &[],
    )?;
    let failed = print_reports(&reports, printer);
    Ok((reports, failed))
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

pub fn audit(global: &GlobalArgs, args: &AuditArgs, printer: &Printer) -> Result<ExitCode, Error> {
    let target = open_target(global, &args.target, &args.images, printer)?;
    let vuln = super::vuln_cmd::VulnContext {
        lock: target.lock.as_ref(),
        vex: &target.vex,
    };
    let reports = if target.analysed().is_empty() {
        audit_source(
            global,
            &vuln,
            &target.source,
            &target.source.images()?,
            &target.specs,
            args.policy.as_deref(),
            &args.images,
        )?
    } else {
        // A `.himg` file: judged on the facts its build's analysis gathered, as `himg build` does.
        let today = today()?;
        let mut reports = Vec::new();
        for a in target.analysed() {
            if !args.images.is_empty() && !args.images.contains(&a.image) {
                continue;
            }
            let spec = target.specs.iter().find(|s| s.name == a.image);
            let policy = policy_for(spec, args.policy.as_deref())?;
            reports.push(judge(
                global,
                &vuln,
                &a.image,
                &a.analysis.facts,
                &policy,
                today,
            )?);
        }
        reports
    };
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
        Err(Error::PolicyViolation { images: failed })
    }
}

/// What `himg build` does after writing its output.
pub struct AfterBuild<'a> {
    /// Where the SBOMs go (`OUT.sbom/`), when they are wanted.
    pub sboms: Option<&'a Path>,
    /// Whether each image's policy is evaluated.
    pub check_policy: bool,
}

/// After `himg build`: SBOMs and each image's policy, both from the images' analyses (made with
/// the image, or found in the store or a binary cache).
pub fn after_build(
    global: &GlobalArgs,
    store: &himg_store::Store,
    analysed: &[Analysed],
    specs: &[ImageSpec],
    vuln: &super::vuln_cmd::VulnContext<'_>,
    what: AfterBuild<'_>,
    printer: &Printer,
) -> Result<(), Error> {
    let check_policy = what.check_policy;
    if let Some(dir) = what.sboms {
        let written = write_sboms(store, analysed, dir)?;
        printer.status(
            "SBOM",
            &format!("{} files → {}", written.len(), dir.display()),
        );
    }
    if check_policy {
        let today = today()?;
        let mut reports = Vec::new();
        for a in analysed {
            let policy = policy_for(specs.iter().find(|s| s.name == a.image), None)?;
            reports.push(judge(
                global,
                vuln,
                &a.image,
                &a.analysis.facts,
                &policy,
                today,
            )?);
        }
        let failed = print_reports(&reports, printer);
        if !failed.is_empty() {
            return Err(Error::PolicyViolation { images: failed });
        }
    }
    Ok(())
}
