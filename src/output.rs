//! Writing built images out of the store: an OCI layout directory, an oci-archive or a docker-archive.
//!
//! Blobs are hard-linked from the store when the output is on the same filesystem (else copied);
//! nothing is recompressed. Every blob is first checked against its digest
//! ([`Store::check_objects`]: re-hashed once per file version), so a corrupt store object is
//! refused, naming it, instead of shipped.

use std::path::Path;

use himg_store::{ObjectRef, Sha256Digest, Store};

use crate::oci;
use crate::plan::{BuildGraph, BuildReport, ImageOutputs, NodeId};

/// What to write a build's images as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// An OCI image layout directory.
    Oci,
    /// A tar of an OCI image layout.
    OciArchive,
    /// A tar that `docker load` accepts (one architecture).
    DockerArchive,
}

/// A descriptor of a blob in the store.
#[derive(Debug, Clone)]
pub struct Desc {
    pub media_type: String,
    pub digest: Sha256Digest,
    pub size: u64,
}

#[derive(Debug, Clone)]
pub struct ArchBuilt {
    pub architecture: String,
    pub manifest: Desc,
    pub config: Desc,
    pub layers: Vec<Desc>,
}

/// One built image: its top descriptor (manifest, or index when multi-arch) and everything below.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    pub name: String,
    pub top: Desc,
    pub per_arch: Vec<ArchBuilt>,
}

impl BuiltImage {
    /// Every blob the image needs, top first, without duplicates.
    pub fn blobs(&self) -> Vec<Desc> {
        let mut out: Vec<Desc> = vec![self.top.clone()];
        for a in &self.per_arch {
            out.push(a.manifest.clone());
            out.push(a.config.clone());
            out.extend(a.layers.iter().cloned());
        }
        let mut seen = std::collections::BTreeSet::new();
        out.retain(|d| seen.insert(d.digest.to_string()));
        out
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("the build produced no output for `{0}`")]
    Missing(String),
    #[error("`{0}` is not an OCI blob in the store")]
    NotOci(String),
    #[error("image `{image}` has no architecture `{arch}` (it has: {available})")]
    NoSuchArch {
        image: String,
        arch: String,
        available: String,
    },
    #[error("a docker-archive holds one image; this build has {0} (use --image NAME)")]
    TooManyImages(usize),
    #[error("--tag names one image; this build has {0} (use --image NAME)")]
    TagsNeedOneImage(usize),
    #[error("bad digest `{0}`")]
    Digest(String),
    #[error(transparent)]
    Oci(#[from] oci::OciError),
    #[error("refusing to write out a damaged store object")]
    Store(#[from] himg_store::StoreError),
}

fn desc(graph: &BuildGraph, report: &BuildReport, id: NodeId) -> Result<Desc, OutputError> {
    let out = report
        .output(id)
        .ok_or_else(|| OutputError::Missing(graph.node(id).name.clone()))?;
    let ObjectRef::Oci(digest) = &out.content else {
        return Err(OutputError::NotOci(out.path.to_string()));
    };
    let media_type = out
        .meta
        .get("media_type")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string();
    Ok(Desc {
        media_type,
        digest: *digest,
        size: out.size,
    })
}

/// Gathers the descriptors of one image from a realised graph.
pub fn collect(
    graph: &BuildGraph,
    report: &BuildReport,
    img: &ImageOutputs,
) -> Result<BuiltImage, OutputError> {
    let mut per_arch = Vec::new();
    for a in &img.per_arch {
        per_arch.push(ArchBuilt {
            architecture: a.architecture.clone(),
            manifest: desc(graph, report, a.manifest)?,
            config: desc(graph, report, a.config)?,
            layers: a
                .layers
                .iter()
                .map(|l| desc(graph, report, *l))
                .collect::<Result<_, _>>()?,
        });
    }
    Ok(BuiltImage {
        name: img.name.clone(),
        top: desc(graph, report, img.top)?,
        per_arch,
    })
}

fn oci_digest(d: &Sha256Digest) -> Result<oci::Sha256Digest, OutputError> {
    let s = d.to_string();
    s.parse::<oci::Sha256Digest>()
        .map_err(|_| OutputError::Digest(s))
}

fn named(store: &Store, img: &BuiltImage) -> Result<oci::NamedImage, OutputError> {
    let blobs = img
        .blobs()
        .iter()
        .map(|d| {
            Ok(oci::Blob {
                digest: oci_digest(&d.digest)?,
                size: d.size,
                path: store.oci_blob_path(&d.digest),
            })
        })
        .collect::<Result<Vec<_>, OutputError>>()?;
    Ok(oci::NamedImage {
        name: img.name.clone(),
        top: oci::Descriptor::new(
            &img.top.media_type,
            oci_digest(&img.top.digest)?,
            img.top.size,
        ),
        blobs,
    })
}

/// The names an OCI layout or archive gives the images: each image under its name, or — with
/// `tags` (Docker references, normalised to `REPO:TAG`) — the one image under every tag.
fn named_all(
    store: &Store,
    images: &[BuiltImage],
    tags: &[String],
) -> Result<Vec<oci::NamedImage>, OutputError> {
    let named: Vec<oci::NamedImage> = images
        .iter()
        .map(|i| named(store, i))
        .collect::<Result<_, _>>()?;
    if tags.is_empty() {
        return Ok(named);
    }
    let [one] = named.as_slice() else {
        return Err(OutputError::TagsNeedOneImage(named.len()));
    };
    let mut names = tags
        .iter()
        .map(|t| oci::docker_tag(t))
        .collect::<Result<Vec<_>, _>>()?;
    names.sort();
    names.dedup();
    Ok(names
        .into_iter()
        .map(|name| oci::NamedImage {
            name,
            ..one.clone()
        })
        .collect())
}

/// Writes the images in the requested format; `tags` (when not empty) name the one image instead
/// of its declared name.
pub fn write(
    store: &Store,
    images: &[BuiltImage],
    format: OutputFormat,
    out: &Path,
    arch: Option<&str>,
    tags: &[String],
) -> Result<(), OutputError> {
    let blobs: Vec<ObjectRef> = images
        .iter()
        .flat_map(BuiltImage::blobs)
        .map(|d| ObjectRef::Oci(d.digest))
        .collect();
    store.check_objects(&blobs)?;
    match format {
        OutputFormat::Oci => oci::write_layout(out, &named_all(store, images, tags)?)?,
        OutputFormat::OciArchive => {
            oci::write_oci_archive(out, &named_all(store, images, tags)?)?;
        }
        OutputFormat::DockerArchive => {
            let [img] = images else {
                return Err(OutputError::TooManyImages(images.len()));
            };
            let host = match std::env::consts::ARCH {
                "x86_64" => "amd64",
                "aarch64" => "arm64",
                other => other,
            };
            let chosen = match arch {
                Some(a) => img.per_arch.iter().find(|p| p.architecture == a),
                None => img
                    .per_arch
                    .iter()
                    .find(|p| p.architecture == host)
                    .or_else(|| img.per_arch.first()),
            };
            let Some(a) = chosen else {
                return Err(OutputError::NoSuchArch {
                    image: img.name.clone(),
                    arch: arch.unwrap_or(host).to_string(),
                    available: img
                        .per_arch
                        .iter()
                        .map(|p| p.architecture.clone())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            };
            let single = BuiltImage {
                name: img.name.clone(),
                top: a.manifest.clone(),
                per_arch: vec![a.clone()],
            };
            let named = named(store, &single)?;
            oci::write_docker_archive_tagged(out, &named, tags, None)?;
        }
    }
    Ok(())
}
