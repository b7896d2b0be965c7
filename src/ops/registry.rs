//! Moving images between OCI layouts and registries: push a layout's image, pull one into a
//! layout (every blob verified, written only inside it; `pull` is `himg pull`), pull a reference
//! into a temporary layout for an operation that reads images, and the subject of attached
//! artifacts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use super::Error;
use crate::oci::{self, Descriptor, NamedImage};
use crate::printer::Printer;
use crate::registry::{BlobSink, BlobSource, Client, ClientOptions, Credentials, Reference};

/// Blobs of an OCI image layout directory: read for a push, written by a pull (which records
/// what it wrote).
struct LayoutBlobs {
    dir: PathBuf,
    written: Mutex<BTreeMap<oci::Sha256Digest, u64>>,
}

impl LayoutBlobs {
    fn new(dir: &Path) -> Self {
        LayoutBlobs {
            dir: dir.to_path_buf(),
            written: Mutex::new(BTreeMap::new()),
        }
    }

    fn blob_dir(&self) -> PathBuf {
        self.dir.join("blobs").join("sha256")
    }

    /// The file of blob `digest`, validated first: a layout's JSON names it.
    fn path(&self, digest: &str) -> Result<PathBuf, oci::OciError> {
        let digest: oci::Sha256Digest = digest.parse()?;
        Ok(self.blob_dir().join(digest.hex()))
    }

    fn read(&self, digest: &str) -> Result<Vec<u8>, Error> {
        let p = self.path(digest)?;
        std::fs::read(&p).map_err(|source| Error::Io { path: p, source })
    }

    /// The blobs a pull wrote, as the layout writer takes them.
    fn written(&self) -> Vec<oci::Blob> {
        let written = self.written.lock().unwrap_or_else(PoisonError::into_inner);
        written
            .iter()
            .map(|(digest, size)| oci::Blob {
                digest: *digest,
                size: *size,
                path: self.blob_dir().join(digest.hex()),
            })
            .collect()
    }
}

impl BlobSource for LayoutBlobs {
    fn open(&self, digest: &str) -> std::io::Result<(Box<dyn std::io::Read>, u64)> {
        let path = self
            .path(digest)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let f = std::fs::File::open(path)?;
        let len = f.metadata()?.len();
        Ok((Box::new(std::io::BufReader::new(f)), len))
    }
}

impl BlobSink for LayoutBlobs {
    /// Writes the blob to a `.tmp-*` file in the layout's blob directory (registered for removal
    /// on SIGINT/SIGTERM), renamed to its digest once the reader has verified it.
    fn put(
        &self,
        digest: &oci::Sha256Digest,
        _size: u64,
        reader: &mut dyn std::io::Read,
    ) -> std::io::Result<()> {
        let blob_dir = self.blob_dir();
        let dest = blob_dir.join(digest.hex());
        let tmp = oci::blob_temp_path(&blob_dir, digest);
        let (mut f, _interrupt) = crate::interrupt::create_file(&tmp)?;
        let result = (|| {
            let size = std::io::copy(reader, &mut f)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &dest)?;
            Ok(size)
        })();
        match result {
            Ok(size) => {
                self.written
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(*digest, size);
                Ok(())
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        }
    }
}

fn json_of(bytes: &[u8], what: &str) -> Result<serde_json::Value, Error> {
    serde_json::from_slice(bytes).map_err(|e| Error::Layout(format!("{what} is not JSON: {e}")))
}

/// Whether to speak plain HTTP to `registry`: `insecure` (`--insecure`), a loopback registry (as
/// Docker treats 127.0.0.0/8), or `[registries."HOST"] insecure = true` in the config file.
pub fn plain_http(registry: &str, insecure: bool) -> Result<bool, Error> {
    if insecure || crate::registry::base::is_loopback_registry(registry) {
        return Ok(true);
    }
    Ok(crate::config::load()?.config.registry_insecure(registry))
}

/// The client for `reference`'s registry: plain HTTP when [`plain_http`], HTTPS elsewhere.
pub fn client_for(reference: &Reference, insecure: bool) -> Result<Client, Error> {
    client_with_mount(reference, insecure, None)
}

/// [`client_for`], mounting blobs from the repository `mount_from` of the same registry.
pub fn client_with_mount(
    reference: &Reference,
    insecure: bool,
    mount_from: Option<String>,
) -> Result<Client, Error> {
    client_with_mounts(reference, insecure, mount_from, Default::default())
}

/// [`client_with_mount`], also mounting each blob of `mount_blobs` (digest → repository) from its
/// own repository.
pub fn client_with_mounts(
    reference: &Reference,
    insecure: bool,
    mount_from: Option<String>,
    mount_blobs: std::collections::BTreeMap<String, String>,
) -> Result<Client, Error> {
    Ok(Client::new(ClientOptions {
        insecure: plain_http(&reference.registry, insecure)?,
        credentials: Credentials::from_env()?,
        mount_from,
        mount_blobs,
        ..ClientOptions::default()
    }))
}

pub fn client(insecure: bool) -> Result<Client, Error> {
    Ok(Client::new(ClientOptions {
        insecure,
        credentials: Credentials::from_env()?,
        ..ClientOptions::default()
    }))
}

/// Pushes the image named `image` (or the only one) of the OCI layout at `layout_dir` to
/// `reference`: missing blobs, child manifests, then the top manifest byte for byte. `label` names
/// the layout in errors.
pub fn push_layout(
    client: &Client,
    layout_dir: &Path,
    label: &str,
    image: Option<&str>,
    reference: &Reference,
) -> Result<crate::registry::PushReport, Error> {
    let layout = LayoutBlobs::new(layout_dir);
    let index_path = layout_dir.join("index.json");
    let index_bytes = std::fs::read(&index_path).map_err(|source| Error::Io {
        path: index_path.clone(),
        source,
    })?;
    let index = json_of(&index_bytes, "index.json")?;
    let manifests = index["manifests"].as_array().cloned().unwrap_or_default();
    let chosen = match image {
        Some(name) => manifests
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str() == Some(name)),
        None if manifests.len() == 1 => manifests.first(),
        None => None,
    }
    .ok_or_else(|| {
        Error::Layout(format!(
            "choose the image with --image (`{}` holds: {})",
            label,
            manifests
                .iter()
                .filter_map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    let top_digest = chosen["digest"].as_str().unwrap_or_default().to_string();
    let top_type = chosen["mediaType"].as_str().unwrap_or_default().to_string();
    let top_bytes = layout.read(&top_digest)?;

    // Children (per-arch manifests of an index) and every blob they need.
    let mut children = Vec::new();
    let mut blobs: Vec<(String, u64)> = Vec::new();
    let mut manifests_to_scan = vec![top_bytes.clone()];
    let top_json = json_of(&top_bytes, "the top manifest")?;
    if let Some(list) = top_json["manifests"].as_array() {
        manifests_to_scan.clear();
        for m in list {
            let d = m["digest"].as_str().unwrap_or_default().to_string();
            let bytes = layout.read(&d)?;
            children.push((
                m["mediaType"].as_str().unwrap_or_default().to_string(),
                bytes.clone(),
            ));
            manifests_to_scan.push(bytes);
        }
    }
    for bytes in &manifests_to_scan {
        let m = json_of(bytes, "a manifest")?;
        for d in std::iter::once(&m["config"]).chain(m["layers"].as_array().into_iter().flatten()) {
            if let (Some(digest), Some(size)) = (d["digest"].as_str(), d["size"].as_u64()) {
                blobs.push((digest.to_string(), size));
            }
        }
    }
    Ok(client.push(reference, &top_type, &top_bytes, &children, &blobs, &layout)?)
}

/// Pulls `reference` (every blob verified) into the OCI layout `out` (created or updated) as the
/// image `name`; returns the top manifest as served.
///
/// Blobs are written straight into `out`'s blob directory through `.tmp-*` files, so nothing is
/// ever written outside `out`. A pull that fails, or is interrupted, removes `out` when it
/// created it; else it leaves only complete, verified blobs, which the next write of the layout
/// collects (and the `.tmp-*` files an interruption left).
pub fn pull_layout(
    client: &Client,
    reference: &Reference,
    out: &Path,
    name: &str,
) -> Result<crate::registry::Pulled, Error> {
    let created = std::fs::symlink_metadata(out).is_err();
    oci::prepare_layout(out)?;
    let _interrupt = created.then(|| crate::interrupt::guard(out));
    let pulled = pull_into(client, reference, out, name);
    if pulled.is_err() && created {
        let _ = std::fs::remove_dir_all(out);
    }
    pulled
}

fn pull_into(
    client: &Client,
    reference: &Reference,
    out: &Path,
    name: &str,
) -> Result<crate::registry::Pulled, Error> {
    let sink = LayoutBlobs::new(out);
    let pulled = client.pull(reference, &sink)?;
    let top = Descriptor::new(
        pulled.media_type.clone(),
        pulled.digest.parse()?,
        pulled.manifest_bytes.len() as u64,
    );
    oci::write_layout(
        out,
        &[NamedImage {
            name: name.to_owned(),
            top,
            blobs: sink.written(),
        }],
    )?;
    Ok(pulled)
}

/// What to pull, and where.
#[derive(Debug, Clone)]
pub struct PullOptions {
    pub reference: Reference,
    /// The OCI layout (created or updated).
    pub out: PathBuf,
    /// The image's name in the layout (`None`: the reference's tag, or `latest`).
    pub name: Option<String>,
    /// Plain HTTP to a registry that is not on the loopback interface.
    pub insecure: bool,
}

/// An image pulled into a layout.
#[derive(Debug, Clone)]
pub struct PulledImage {
    pub reference: Reference,
    /// The digest of the top manifest (or index), as served.
    pub digest: String,
    /// Its name in the layout.
    pub name: String,
}

impl PulledImage {
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "reference": self.reference.to_string(),
            "digest": self.digest,
            "name": self.name,
        })
    }
}

/// Pulls `opts.reference` (every blob verified) into the layout `opts.out`; prints `Pulled`.
pub fn pull(session: &super::Session<'_>, opts: &PullOptions) -> Result<PulledImage, Error> {
    let reference = &opts.reference;
    let name = opts
        .name
        .clone()
        .or_else(|| reference.tag.clone())
        .unwrap_or_else(|| "latest".to_string());
    let progress = session
        .printer()
        .transfer("Pulling", &reference.to_string());
    let pulled = pull_layout(
        &client_for(reference, opts.insecure)?.with_progress(progress),
        reference,
        &opts.out,
        &name,
    )?;
    session.printer().status(
        "Pulled",
        &format!(
            "{reference} {} → {}:{name}",
            pulled.digest,
            opts.out.display()
        ),
    );
    Ok(PulledImage {
        reference: reference.clone(),
        digest: pulled.digest,
        name,
    })
}

/// A registry image pulled into a temporary OCI layout (removed on drop).
pub struct PulledTemp {
    _dir: tempfile::TempDir,
    /// Removes the directory on SIGINT/SIGTERM too.
    _interrupt: crate::interrupt::TempGuard,
    /// The layout; its one image is named `pulled`.
    pub layout: PathBuf,
    /// What was pulled, and the digest of its top manifest (or index).
    pub reference: Reference,
    pub digest: String,
    /// Whether the registry is spoken to over plain HTTP.
    pub plain_http: bool,
}

impl PulledTemp {
    /// The artifacts in the pulled repository that refer to the top manifest or to
    /// `manifest_digest` (one architecture's manifest), as `(subject, referrer)`.
    pub fn referrers(
        &self,
        manifest_digest: &str,
    ) -> Result<Vec<(String, crate::registry::artifact::Referrer)>, Error> {
        let client = client(self.plain_http)?;
        let mut subjects = vec![self.digest.as_str()];
        if manifest_digest != self.digest {
            subjects.push(manifest_digest);
        }
        let mut out = Vec::new();
        for subject in subjects {
            for r in crate::registry::artifact::referrers(&client, &self.reference, subject)? {
                out.push((subject.to_owned(), r));
            }
        }
        Ok(out)
    }
}

/// When `target` is not an existing path but a registry reference (`HOST/REPO[:TAG][@DIGEST]`),
/// pulls it (every blob verified) into a temporary layout; `None` for anything else. Loopback
/// registries are spoken to over plain HTTP; `insecure` allows it elsewhere.
pub fn pull_if_reference(
    target: &str,
    insecure: bool,
    printer: &Printer,
) -> Result<Option<PulledTemp>, Error> {
    if Path::new(target).exists() || !target.contains('/') {
        return Ok(None);
    }
    let Ok(reference) = target.parse::<Reference>() else {
        return Ok(None);
    };
    let dir = tempfile::Builder::new()
        .prefix("himg-pull-")
        .tempdir()
        .map_err(|source| Error::Io {
            path: std::env::temp_dir(),
            source,
        })?;
    let interrupt = crate::interrupt::guard(dir.path());
    let layout = dir.path().join("layout");
    let plain = plain_http(&reference.registry, insecure)?;
    let client = client(plain)?.with_progress(printer.transfer("Pulling", &reference.to_string()));
    let pulled = pull_layout(&client, &reference, &layout, "pulled")?;
    printer.status("Pulled", &format!("{reference} {}", pulled.digest));
    Ok(Some(PulledTemp {
        _dir: dir,
        _interrupt: interrupt,
        layout,
        reference,
        digest: pulled.digest,
        plain_http: plain,
    }))
}

/// What an artifact attached to the image `manifest` refers to, and its `created` time: the
/// build's, so that artifact manifests are reproducible too.
pub fn artifact_subject(
    manifest: &crate::image::ManifestSummary,
) -> (crate::registry::artifact::Subject, String) {
    let subject = crate::registry::artifact::Subject {
        media_type: crate::registry::OCI_MANIFEST.to_owned(),
        digest: manifest.digest.clone(),
        size: manifest.size,
    };
    let created = manifest
        .config
        .created
        .clone()
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned());
    (subject, created)
}
