//! `himg sbom` and `himg audit`, and what `himg build` does after writing its output: SBOMs beside
//! the output, and each image's policy evaluated.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use himg_lang::ImageSpec;
use serde_json::json;

use super::args::{AuditArgs, GlobalArgs, SbomArgs, SbomFormat};
use super::{Error, Printer};
use crate::debian::lockfile::LockFile;
use crate::image::{ImageSource, ImageView};
use crate::ops::audit::{
    audit_source, bom, declared_vex, judge, name_of, policy_for, print_reports, today,
};
use crate::ops::build::Analysed;
use crate::ops::vuln::VulnContext;
use crate::sbom::Format;

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
    _pulled: Option<crate::ops::registry::PulledTemp>,
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
            Some(t) => crate::ops::registry::pull_if_reference(t, false, printer)?,
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

pub fn audit(global: &GlobalArgs, args: &AuditArgs, printer: &Printer) -> Result<ExitCode, Error> {
    let target = open_target(global, &args.target, &args.images, printer)?;
    let vuln = VulnContext {
        lock: target.lock.as_ref(),
        vex: &target.vex,
    };
    let reports = if target.analysed().is_empty() {
        audit_source(
            &super::session(global, printer),
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
                &super::session(global, printer),
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
