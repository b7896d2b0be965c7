//! `himg push` and `himg pull`: ship an image to any OCI distribution registry and bring one back,
//! byte-identical (the pushed manifest has the local digest).

use std::path::Path;
use std::process::ExitCode;

use serde_json::json;

use super::args::{PullArgs, PushArgs};
use super::{Error, Printer};
use crate::ops::registry::{artifact_subject, client_for, pull_layout, push_layout};
use crate::registry::{Client, Reference};

/// `himg push LAYOUT REF`: the image named `--image` (or the only one) of an OCI layout.
pub fn push(
    global: &super::args::GlobalArgs,
    args: &PushArgs,
    printer: &Printer,
) -> Result<ExitCode, Error> {
    let reference: Reference = args.reference.parse()?;
    if args.provenance && !crate::ops::compile::is_himg_file(&args.layout) {
        return Err(Error::Layout(format!(
            "--provenance needs the .himg file the image is built from, not `{}`",
            args.layout.display()
        )));
    }
    // A .himg file is built first (everything the store has is reused), then pushed from its layout.
    let built = if crate::ops::compile::is_himg_file(&args.layout) {
        let images: Vec<String> = args.image.iter().cloned().collect();
        // With --sbom, the build's analysis carries the SBOM documents: nothing is read back.
        let session = super::session(global, printer);
        Some(crate::ops::build::materialize(
            &session,
            &args.layout,
            &images,
            args.sbom,
        )?)
    } else {
        None
    };
    let layout_dir = built
        .as_ref()
        .map_or_else(|| args.layout.clone(), |b| b.layout());
    let client = client_for(&reference, args.insecure)?;
    let report = push_layout(
        &client,
        &layout_dir,
        &args.layout.display().to_string(),
        args.image.as_deref(),
        &reference,
    )?;
    let sboms = if args.sbom {
        let store = match &built {
            Some(b) if !b.analysed.is_empty() => Some(super::open_store(global)?),
            _ => None,
        };
        let analysed = store
            .as_ref()
            .zip(built.as_ref())
            .map(|(s, b)| (s, &b.analysed[..]));
        attach_sboms(
            &client,
            &layout_dir,
            &reference,
            args.image.as_deref(),
            built.as_ref().and_then(|b| b.lock.as_ref()),
            analysed,
            printer,
        )?
    } else {
        Vec::new()
    };
    let provenance = if args.provenance {
        super::provenance_cmd::attach(
            &client,
            &layout_dir,
            &reference,
            args,
            global.project_root.as_deref(),
            built.as_ref().and_then(|b| b.lock.as_ref()),
            printer,
        )?
    } else {
        Vec::new()
    };
    if args.json {
        printer.json(&json!({
            "sboms": sboms,
            "provenance": provenance,
            "reference": reference.to_string(),
            "digest": report.manifest_digest,
            "uploaded": report.uploaded,
            "skipped": report.skipped,
            "mounted": report.mounted,
            "bytes_uploaded": report.bytes_uploaded,
            "bytes_skipped": report.bytes_skipped,
        }));
    }
    printer.status(
        "Pushed",
        &format!(
            "{reference} {} ({} blobs uploaded, {} bytes; {} already there, {} bytes skipped)",
            report.manifest_digest,
            report.uploaded.len(),
            report.bytes_uploaded,
            report.skipped.len() + report.mounted.len(),
            report.bytes_skipped
        ),
    );
    Ok(ExitCode::SUCCESS)
}

/// `himg pull REF --out DIR`: into an OCI layout, named by the reference's tag (or `latest`).
pub fn pull(args: &PullArgs, printer: &Printer) -> Result<ExitCode, Error> {
    let reference: Reference = args.reference.parse()?;
    let name = args
        .name
        .clone()
        .or_else(|| reference.tag.clone())
        .unwrap_or_else(|| "latest".to_string());
    let pulled = pull_layout(
        &client_for(&reference, args.insecure)?,
        &reference,
        &args.out,
        &name,
    )?;
    let top_digest = pulled.digest;
    printer.status(
        "Pulled",
        &format!("{reference} {top_digest} → {}:{name}", args.out.display()),
    );
    if args.json {
        printer
            .json(&json!({"reference": reference.to_string(), "digest": top_digest, "name": name}));
    }
    Ok(ExitCode::SUCCESS)
}

/// The artifact types of attached SBOMs, with their tag suffixes.
const SBOM_ARTIFACTS: [(crate::sbom::Format, &str, &str); 2] = [
    (crate::sbom::Format::Spdx, "application/spdx+json", "spdx"),
    (
        crate::sbom::Format::CycloneDx,
        "application/vnd.cyclonedx+json",
        "cdx",
    ),
];

/// The SPDX and CycloneDX documents (in `SBOM_ARTIFACTS` order) of the image manifest `view`:
/// the build's analysis blobs when it has one for that image and architecture, else rendered
/// from the layout (layers read back).
fn sbom_documents(
    source: &crate::image::ImageSource,
    view: &crate::image::ManifestSummary,
    lock: Option<&crate::debian::lockfile::LockFile>,
    analysed: Option<(&himg_store::Store, &[crate::ops::build::Analysed])>,
) -> Result<Vec<Vec<u8>>, Error> {
    let name = view.name.as_deref().unwrap_or_default();
    let found = analysed.and_then(|(store, all)| {
        all.iter()
            .find(|a| a.image == name && a.architecture == view.config.architecture)
            .map(|a| (store, a))
    });
    if let Some((store, a)) = found {
        let mut documents = Vec::new();
        for (format, _, _) in SBOM_ARTIFACTS {
            let blob = a
                .analysis
                .sboms
                .iter()
                .find(|(suffix, _)| *suffix == format.suffix())
                .map(|(_, blob)| *blob)
                .ok_or_else(|| {
                    Error::Layout(format!(
                        "the analysis of `{name}` has no {} SBOM",
                        format.suffix()
                    ))
                })?;
            documents.push(store.read_blob(&blob)?);
        }
        return Ok(documents);
    }
    let view = source
        .manifest_image(&view.digest, view.name.as_deref())?
        .ok_or_else(|| Error::Layout(format!("{} is not an image manifest", view.digest)))?;
    let bom = crate::ops::audit::bom(source, &view, lock);
    Ok(SBOM_ARTIFACTS
        .iter()
        .map(|(format, _, _)| format.render(&bom).into_bytes())
        .collect())
}

/// Attaches the SBOMs of every image manifest pushed from `layout_dir` (the image `image`, or the
/// only one) to `reference`'s repository; returns what was attached, for the JSON report.
fn attach_sboms(
    client: &Client,
    layout_dir: &Path,
    reference: &Reference,
    image: Option<&str>,
    lock: Option<&crate::debian::lockfile::LockFile>,
    analysed: Option<(&himg_store::Store, &[crate::ops::build::Analysed])>,
    printer: &Printer,
) -> Result<Vec<serde_json::Value>, Error> {
    use crate::registry::artifact;
    let source = crate::image::ImageSource::open(layout_dir)?;
    let mut attached = Vec::new();
    for view in source.manifests()? {
        if image.is_some_and(|n| view.name.as_deref() != Some(n)) {
            continue;
        }
        let (subject, created) = artifact_subject(&view);
        let documents = sbom_documents(&source, &view, lock, analysed)?;
        for ((_, artifact_type, suffix), document) in SBOM_ARTIFACTS.iter().zip(documents) {
            let tag = artifact::tag(&view.digest, suffix).ok_or_else(|| {
                Error::Layout(format!("manifest digest {} is not sha256", view.digest))
            })?;
            let manifest = artifact::manifest(&subject, artifact_type, &document, &created)?;
            let digest = artifact::push(client, reference, &tag, &manifest, &document)?;
            printer.status(
                "Attached",
                &format!(
                    "{suffix} SBOM of {} ({}) → {}:{tag}",
                    view.digest, view.config.architecture, reference.repository
                ),
            );
            attached.push(json!({
                "subject": view.digest,
                "architecture": view.config.architecture,
                "artifact_type": artifact_type,
                "tag": tag,
                "digest": digest,
            }));
        }
    }
    Ok(attached)
}
