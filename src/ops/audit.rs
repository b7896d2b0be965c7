//! Judging and documenting built images: SBOMs (placed beside an output, or modelled from a read
//! image), policies evaluated over an image's facts (with the vulnerability counts a policy
//! limits), the reports printed, what `himg build` does after writing its output, and the `sbom` and
//! `audit` use-cases over any image target.

use std::path::{Path, PathBuf};

use himg_lang::ImageSpec;

use super::build::Analysed;
use super::target::{OpenOptions, Target};
use super::vuln::VulnContext;
use super::{Error, Session};
use crate::debian::lockfile::LockFile;
use crate::image::{ImageSource, ImageView, RootfsContents};
use crate::policy::{self, Date, Facts, Policy};
use crate::printer::Printer;
use crate::sbom::{self, Bom};

/// The OpenVEX files each image of a loaded file declares, resolved to paths.
pub fn declared_vex(
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
pub fn name_of(view: &ImageView) -> String {
    view.name
        .clone()
        .unwrap_or_else(|| view.digest.trim_start_matches("sha256:")[..12].to_string())
}

/// Builds the SBOM model of one image.
pub fn bom(source: &ImageSource, view: &ImageView, lock: Option<&LockFile>) -> Bom {
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
pub fn write_sboms(
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

/// The policy an image is judged by: `forced` (a baseline name) or the image's declared one.
pub fn policy_for(spec: Option<&ImageSpec>, forced: Option<&str>) -> Result<Policy, Error> {
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
pub fn judge(
    session: &Session<'_>,
    vuln: &VulnContext<'_>,
    name: &str,
    facts: &Facts,
    policy: &Policy,
    today: Date,
) -> Result<policy::Report, Error> {
    let counts = if policy.rules.contains(&policy::Rule::MaxVulnerabilities) {
        super::vuln::vulnerability_counts(session, vuln, name, facts)?
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

pub fn today() -> Result<Date, Error> {
    Date::today().map_err(|e| Error::Layout(e.to_string()))
}

/// Evaluates the policies of `views` (the images of `source`); `specs` give declared policies by
/// image name.
pub fn audit_source(
    session: &Session<'_>,
    vuln: &VulnContext<'_>,
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
        reports.push(judge(session, vuln, &name, &facts, &policy, today)?);
    }
    Ok(reports)
}

/// The policy gate of `himg promote`: every image of the OCI layout at `layout` judged by the
/// baseline `baseline` (as `himg audit --policy`), the reports printed; returns them and the images
/// that fail.
pub fn policy_gate(
    session: &Session<'_>,
    layout: &Path,
    baseline: &str,
    printer: &Printer,
) -> Result<(Vec<policy::Report>, Vec<String>), Error> {
    let source = ImageSource::open(layout)?;
    let vex = std::collections::BTreeMap::new();
    let vuln = VulnContext {
        lock: None,
        vex: &vex,
    };
    let reports = audit_source(
        session,
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
pub fn print_reports(reports: &[policy::Report], printer: &Printer) -> Vec<String> {
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
    session: &Session<'_>,
    store: &himg_store::Store,
    analysed: &[Analysed],
    specs: &[ImageSpec],
    vuln: &VulnContext<'_>,
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
                session,
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

/// What `himg sbom` documents.
#[derive(Debug, Clone)]
pub struct SbomOptions {
    /// A `.himg` file, an OCI layout, an archive or a registry reference.
    pub target: PathBuf,
    pub format: sbom::Format,
    /// The image (needed when the target holds several).
    pub image: Option<String>,
    /// The architecture (needed for a multi-architecture image).
    pub arch: Option<String>,
    /// Plain http for a registry reference that is not on loopback.
    pub insecure: bool,
}

/// One image's SBOM document.
pub struct SbomDocument {
    pub format: sbom::Format,
    pub text: String,
}

impl SbomDocument {
    /// Writes the document to `path`, saying so.
    pub fn write(&self, path: &Path, printer: &Printer) -> Result<(), Error> {
        std::fs::write(path, &self.text).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        printer.status(
            "Wrote",
            &format!("{} SBOM → {}", self.format.suffix(), path.display()),
        );
        Ok(())
    }
}

/// The SBOM of one image of a target: for a `.himg` file the one its build's analysis made (the
/// store's copy, byte for byte), else modelled from the image read back.
pub fn sbom(session: &Session<'_>, opts: &SbomOptions) -> Result<SbomDocument, Error> {
    let open = OpenOptions {
        images: opts.image.iter().cloned().collect(),
        analyse: true,
        insecure: opts.insecure,
        ..OpenOptions::default()
    };
    let target = Target::open(session, &opts.target, &open)?;
    let format = opts.format;
    if !target.analysed().is_empty() {
        let text = stored_sbom(session, target.analysed(), opts)?;
        return Ok(SbomDocument { format, text });
    }
    let all = target.source.images()?;
    let views: Vec<&ImageView> = all
        .iter()
        .filter(|v| {
            opts.image
                .as_ref()
                .is_none_or(|n| v.name.as_ref() == Some(n))
        })
        .filter(|v| {
            opts.arch
                .as_ref()
                .is_none_or(|a| &v.config.architecture == a)
        })
        .collect();
    let [view] = views.as_slice() else {
        let labels = views
            .iter()
            .map(|v| format!("{} {}", name_of(v), v.config.architecture));
        return Err(not_one_image(&opts.target, labels.collect()));
    };
    let text = format.render(&bom(&target.source, view, target.lock.as_ref()));
    Ok(SbomDocument { format, text })
}

/// The SBOM the analysis of the one image `opts` selects made, read from the store.
fn stored_sbom(
    session: &Session<'_>,
    analysed: &[Analysed],
    opts: &SbomOptions,
) -> Result<String, Error> {
    let chosen: Vec<&Analysed> = analysed
        .iter()
        .filter(|a| opts.image.as_ref().is_none_or(|n| &a.image == n))
        .filter(|a| opts.arch.as_ref().is_none_or(|x| &a.architecture == x))
        .collect();
    let [a] = chosen.as_slice() else {
        let labels = chosen
            .iter()
            .map(|a| format!("{} {}", a.image, a.architecture));
        return Err(not_one_image(&opts.target, labels.collect()));
    };
    let suffix = opts.format.suffix();
    let blob = a
        .analysis
        .sboms
        .iter()
        .find(|(s, _)| *s == suffix)
        .map(|(_, b)| *b)
        .ok_or_else(|| Error::Layout(format!("no {suffix} document")))?;
    let bytes = session
        .open_store()?
        .read_blob(&blob)
        .map_err(crate::plan::PlanError::from)?;
    String::from_utf8(bytes).map_err(|_| Error::Layout("the stored SBOM is not UTF-8".into()))
}

/// `target` matches none or several images (`labels`) where one is needed.
fn not_one_image(target: &Path, labels: Vec<String>) -> Error {
    Error::Layout(format!(
        "`{}` holds {} matching images ({}); choose one with --image and --arch",
        target.display(),
        labels.len(),
        labels.join(", ")
    ))
}

/// What `himg audit` judges.
#[derive(Debug, Clone, Default)]
pub struct AuditOptions {
    /// A `.himg` file (its images' declared policies apply), an OCI layout, an archive or a
    /// registry reference.
    pub target: PathBuf,
    /// Only these images (empty: all).
    pub images: Vec<String>,
    /// Judge by this baseline (`baseline`, `strict`, `none`) instead of the declared policies.
    pub policy: Option<String>,
    /// Plain http for a registry reference that is not on loopback.
    pub insecure: bool,
}

/// The policy reports of a target's images.
pub struct Audited {
    pub reports: Vec<policy::Report>,
}

impl Audited {
    /// `{"images": [...], "passed": bool}` (an image without a declared policy does not fail).
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "images": self.reports.iter().map(|r| r.to_json()).collect::<Vec<_>>(),
            "passed": self.reports.iter().all(|r| r.passed() || !r.policy.declared),
        })
    }
}

/// Evaluates the policies of a target's images: a `.himg` file's on the facts its build's analysis
/// gathered (as `himg build` does), anything else's on the image read back.
pub fn audit(session: &Session<'_>, opts: &AuditOptions) -> Result<Audited, Error> {
    let open = OpenOptions {
        images: opts.images.clone(),
        analyse: true,
        insecure: opts.insecure,
        ..OpenOptions::default()
    };
    let target = Target::open(session, &opts.target, &open)?;
    let vuln = target.vuln_context();
    let forced = opts.policy.as_deref();
    if target.analysed().is_empty() {
        let views = target.source.images()?;
        let reports = audit_source(
            session,
            &vuln,
            &target.source,
            &views,
            &target.specs,
            forced,
            &opts.images,
        )?;
        return Ok(Audited { reports });
    }
    let today = today()?;
    let mut reports = Vec::new();
    for a in target.analysed() {
        if !opts.images.is_empty() && !opts.images.contains(&a.image) {
            continue;
        }
        let spec = target.specs.iter().find(|s| s.name == a.image);
        let policy = policy_for(spec, forced)?;
        reports.push(judge(
            session,
            &vuln,
            &a.image,
            &a.analysis.facts,
            &policy,
            today,
        )?);
    }
    Ok(Audited { reports })
}
