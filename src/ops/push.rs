//! Pushing an image to an OCI distribution registry: an OCI layout's image, or a `.himg` file's
//! built first, byte-identical (the pushed manifest has the local digest), with its SBOMs and its
//! signed provenance attached beside it when asked.

use crate::image::{ImageSource, ManifestSummary};
use std::path::{Path, PathBuf};

use serde_json::json;

use super::build::{Analysed, Materialized};
use super::registry::{artifact_subject, push_layout};
use super::{Error, Session};
use crate::debian::lockfile::LockFile;
use crate::printer::{Printer, size};
use crate::registry::{Client, PushReport, Reference};

/// What to push, and what to attach beside it.
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// An OCI layout directory, or a `.himg` file (built first, reusing the store).
    pub layout: PathBuf,
    pub reference: Reference,
    /// The image of the layout (or file) to push; `None`: the only one.
    pub image: Option<String>,
    /// Plain HTTP to a registry that is not on the loopback interface.
    pub insecure: bool,
    /// Attach the SPDX and CycloneDX SBOMs of every pushed image manifest.
    pub sbom: bool,
    /// Attach signed provenance (needs a `.himg` file).
    pub provenance: bool,
    /// The key signing the provenance (`None`: the configured one).
    pub sign_key: Option<String>,
    /// A repository of the same registry whose blobs are mounted rather than uploaded (`None`:
    /// the repository of the image's registry base, when the file declares one on that registry).
    pub mount_from: Option<String>,
    /// Blobs known to be in other repositories of the same registry (digest → repository), mounted
    /// from there (a workspace push fills it with what it pushed before).
    pub mount_blobs: std::collections::BTreeMap<String, String>,
}

impl PushOptions {
    /// Pushes `layout` (its only image) to `reference`, attaching nothing.
    pub fn new(layout: &Path, reference: Reference) -> PushOptions {
        PushOptions {
            layout: layout.to_path_buf(),
            reference,
            image: None,
            insecure: false,
            sbom: false,
            provenance: false,
            sign_key: None,
            mount_from: None,
            mount_blobs: std::collections::BTreeMap::new(),
        }
    }
}

/// What a push did.
#[derive(Debug)]
pub struct Pushed {
    pub reference: Reference,
    pub report: PushReport,
    /// The SBOMs attached, as the JSON report lists them.
    pub sboms: Vec<serde_json::Value>,
    /// The provenance envelopes attached, as the JSON report lists them.
    pub provenance: Vec<serde_json::Value>,
}

impl Pushed {
    pub fn json(&self) -> serde_json::Value {
        let report = &self.report;
        json!({
            "sboms": self.sboms,
            "provenance": self.provenance,
            "reference": self.reference.to_string(),
            "digest": report.manifest_digest,
            "uploaded": report.uploaded,
            "skipped": report.skipped,
            "mounted": report.mounted,
            "bytes_uploaded": report.bytes_uploaded,
            "bytes_skipped": report.bytes_skipped,
        })
    }

    /// The `Pushed` status line.
    pub fn print(&self, printer: &Printer) {
        let report = &self.report;
        printer.status(
            "Pushed",
            &format!(
                "{} {} ({} blobs uploaded, {}; {} already there, {} skipped)",
                self.reference,
                report.manifest_digest,
                report.uploaded.len(),
                size(report.bytes_uploaded),
                report.skipped.len() + report.mounted.len(),
                size(report.bytes_skipped)
            ),
        );
    }
}

/// Pushes `opts.layout`'s image to `opts.reference`, then attaches what `opts` asks for.
pub fn push(session: &Session<'_>, opts: &PushOptions) -> Result<Pushed, Error> {
    let is_file = super::compile::is_himg_file(&opts.layout);
    if opts.provenance && !is_file {
        return Err(Error::Layout(format!(
            "--provenance needs the .himg file the image is built from, not `{}`",
            opts.layout.display()
        )));
    }
    // A .himg file is built first (everything the store has is reused), then pushed from its layout.
    let built = if is_file {
        let images: Vec<String> = opts.image.iter().cloned().collect();
        // With SBOMs, the build's analysis carries the SBOM documents: nothing is read back.
        Some(super::build::materialize(
            session,
            &opts.layout,
            &images,
            opts.sbom,
        )?)
    } else {
        None
    };
    let layout_dir = built
        .as_ref()
        .map_or_else(|| opts.layout.clone(), Materialized::layout);
    let mount_from = match &opts.mount_from {
        Some(repo) => Some(repo.clone()),
        None if is_file => registry_base_repository(session, opts)?,
        None => None,
    };
    let client = super::registry::client_with_mounts(
        &opts.reference,
        opts.insecure,
        mount_from,
        opts.mount_blobs.clone(),
    )?
    .with_progress(
        session
            .printer()
            .transfer("Pushing", &opts.reference.to_string()),
    );
    let report = push_layout(
        &client,
        &layout_dir,
        &opts.layout.display().to_string(),
        opts.image.as_deref(),
        &opts.reference,
    )?;
    let lock = built.as_ref().and_then(|b| b.lock.as_ref());
    let pushed = PushedLayout {
        client: &client,
        layout_dir: &layout_dir,
        reference: &opts.reference,
        image: opts.image.as_deref(),
        lock,
    };
    let sboms = if opts.sbom {
        let store = match &built {
            Some(b) if !b.analysed.is_empty() => Some(session.open_store()?),
            _ => None,
        };
        let analysed = store
            .as_ref()
            .zip(built.as_ref())
            .map(|(s, b)| (&**s, &b.analysed[..]));
        attach_sboms(&pushed, analysed, session.printer())?
    } else {
        Vec::new()
    };
    let provenance = if opts.provenance {
        super::provenance::attach(session, &pushed, &opts.layout, opts.sign_key.as_deref())?
    } else {
        Vec::new()
    };
    Ok(Pushed {
        reference: opts.reference.clone(),
        report,
        sboms,
        provenance,
    })
}

/// A layout just pushed: where artifacts about its image manifests are attached.
pub struct PushedLayout<'a> {
    pub client: &'a Client,
    pub layout_dir: &'a Path,
    pub reference: &'a Reference,
    /// The image pushed (`None`: the only one).
    pub image: Option<&'a str>,
    /// `FILE.himg.lock`, when the layout was built from a file declaring packages.
    pub lock: Option<&'a LockFile>,
}

impl PushedLayout<'_> {
    /// The layout, and the image manifests that were pushed (the chosen image's, or every one).
    pub fn manifests(&self) -> Result<(ImageSource, Vec<ManifestSummary>), Error> {
        let source = ImageSource::open(self.layout_dir)?;
        let manifests = source
            .manifests()?
            .into_iter()
            .filter(|view| self.image.is_none_or(|n| view.name.as_deref() == Some(n)))
            .collect();
        Ok((source, manifests))
    }

    /// Pushes `payload` as an artifact about the manifest `view`, tagged `sha256-<hex>.<suffix>`;
    /// returns the artifact manifest's digest and its tag.
    pub fn attach(
        &self,
        view: &ManifestSummary,
        suffix: &str,
        artifact_type: &str,
        payload: &[u8],
    ) -> Result<(String, String), Error> {
        use crate::registry::artifact;
        let (subject, created) = artifact_subject(view);
        let tag = artifact::tag(&view.digest, suffix).ok_or_else(|| {
            Error::Layout(format!("manifest digest {} is not sha256", view.digest))
        })?;
        let manifest = artifact::manifest(&subject, artifact_type, payload, &created)?;
        let digest = artifact::push(self.client, self.reference, &tag, &manifest, payload)?;
        Ok((digest, tag))
    }
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
    lock: Option<&LockFile>,
    analysed: Option<(&himg_store::Store, &[Analysed])>,
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
    let bom = super::audit::bom(source, &view, lock);
    Ok(SBOM_ARTIFACTS
        .iter()
        .map(|(format, _, _)| format.render(&bom).into_bytes())
        .collect())
}

/// Attaches the SBOMs of every image manifest `pushed` holds to its repository; returns what was
/// attached, for the JSON report.
fn attach_sboms(
    pushed: &PushedLayout<'_>,
    analysed: Option<(&himg_store::Store, &[Analysed])>,
    printer: &Printer,
) -> Result<Vec<serde_json::Value>, Error> {
    let reference = pushed.reference;
    let (source, manifests) = pushed.manifests()?;
    let mut attached = Vec::new();
    for view in manifests {
        let documents = sbom_documents(&source, &view, pushed.lock, analysed)?;
        for ((_, artifact_type, suffix), document) in SBOM_ARTIFACTS.iter().zip(documents) {
            let (digest, tag) = pushed.attach(&view, suffix, artifact_type, &document)?;
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

/// The repository of the pushed image's registry base (`from = "HOST/REPO…@sha256:…"`, on its own
/// `from` chain), when that base lives on the registry pushed to: its blobs are already there.
fn registry_base_repository(
    session: &Session<'_>,
    opts: &PushOptions,
) -> Result<Option<String>, Error> {
    let loaded = session.load(&opts.layout)?;
    let images = &loaded.evaluated.images;
    let spec = match &opts.image {
        Some(name) => images.iter().find(|i| i.name == *name),
        None if images.len() == 1 => images.first(),
        None => None,
    };
    let mut current = spec;
    while let Some(s) = current {
        if let Some(reference) = &s.base_reference {
            let base: Reference = reference.parse()?;
            return Ok((base.registry == opts.reference.registry).then_some(base.repository));
        }
        current = s.base.as_deref();
    }
    Ok(None)
}
