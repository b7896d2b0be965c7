//! OCI artifacts that refer to an image: one payload (a promotion record, an SBOM) as the single
//! layer of an image manifest with an `artifactType`, the empty config and a `subject` naming the
//! image's manifest. They are tagged `sha256-<hex>.<suffix>` — the referrers "tag schema" — so they
//! are found on registries without the referrers API (Debian's docker-registry among them).

use std::sync::Mutex;

use super::{BlobSink, BlobSource, Client, OCI_MANIFEST, Reference, RegistryError, sha256_digest};

/// The OCI empty descriptor's media type (an artifact's config).
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// The empty config's content.
const EMPTY: &[u8] = b"{}";

/// The manifest an artifact refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

/// The tag of the artifact of manifest `digest` (`sha256:<hex>`) with `suffix`:
/// `sha256-<hex>.<suffix>`; `None` for a digest that is not sha256 hex.
pub fn tag(digest: &str, suffix: &str) -> Option<String> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| format!("sha256-{hex}.{suffix}"))
}

/// `reference`'s repository with another tag (or none).
pub fn in_repository(reference: &Reference, tag: Option<String>) -> Reference {
    Reference {
        registry: reference.registry.clone(),
        repository: reference.repository.clone(),
        tag,
        digest: None,
    }
}

/// The artifact manifest (canonical JSON) for `payload` of `artifact_type` referring to
/// `subject`; `created` is its `org.opencontainers.image.created` annotation.
pub fn manifest(
    subject: &Subject,
    artifact_type: &str,
    payload: &[u8],
    created: &str,
) -> Result<Vec<u8>, crate::oci::OciError> {
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {
            "mediaType": EMPTY_MEDIA_TYPE,
            "digest": sha256_digest(EMPTY),
            "size": EMPTY.len(),
            "data": "e30=",
        },
        "layers": [{
            "mediaType": artifact_type,
            "digest": sha256_digest(payload),
            "size": payload.len(),
        }],
        "subject": {
            "mediaType": subject.media_type,
            "digest": subject.digest,
            "size": subject.size,
        },
        "annotations": {
            "org.opencontainers.image.created": created,
        },
    });
    crate::oci::canonical_json(&manifest)
}

/// Pushes `manifest_bytes` (from [`manifest`]) with its payload into `repository`'s repository
/// under `tag`; returns the artifact manifest's digest.
pub fn push(
    client: &Client,
    repository: &Reference,
    tag: &str,
    manifest_bytes: &[u8],
    payload: &[u8],
) -> Result<String, RegistryError> {
    let blobs = MemoryBlobs(vec![
        (sha256_digest(EMPTY), EMPTY.to_vec()),
        (sha256_digest(payload), payload.to_vec()),
    ]);
    let sizes: Vec<(String, u64)> = blobs
        .0
        .iter()
        .map(|(d, b)| (d.clone(), b.len() as u64))
        .collect();
    let report = client.push(
        &in_repository(repository, Some(tag.to_owned())),
        OCI_MANIFEST,
        manifest_bytes,
        &[],
        &sizes,
        &blobs,
    )?;
    Ok(report.manifest_digest)
}

/// What is wrong with an artifact found under a tag.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("{reference}: {what}")]
    Malformed { reference: String, what: String },
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// The payload of the artifact tagged `tag` in `repository`'s repository, checked to be of
/// `artifact_type`, to refer to `subject_digest` and to be at most `limit` bytes; `None` when the
/// tag does not exist. The payload is verified against its digest as it is read.
pub fn fetch(
    client: &Client,
    repository: &Reference,
    tag: &str,
    artifact_type: &str,
    subject_digest: &str,
    limit: u64,
) -> Result<Option<Vec<u8>>, ArtifactError> {
    let reference = in_repository(repository, Some(tag.to_owned()));
    let bytes = match client.manifest(&reference) {
        Ok((_, bytes, _)) => bytes,
        Err(RegistryError::Status { status: 404, .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let malformed = |what: &str| ArtifactError::Malformed {
        reference: reference.to_string(),
        what: what.to_owned(),
    };
    let manifest: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|_| malformed("the manifest is not JSON"))?;
    if manifest["artifactType"].as_str() != Some(artifact_type) {
        return Err(malformed(&format!("not a `{artifact_type}` artifact")));
    }
    if manifest["subject"]["digest"].as_str() != Some(subject_digest) {
        return Err(malformed("its subject is another manifest"));
    }
    let layer = &manifest["layers"][0];
    let (Some(layer_digest), Some(size)) = (layer["digest"].as_str(), layer["size"].as_u64())
    else {
        return Err(malformed("no payload layer"));
    };
    if layer["mediaType"].as_str() != Some(artifact_type) || size > limit {
        return Err(malformed("the layer is not its payload"));
    }
    let sink = MemorySink::default();
    client.blob(&reference, layer_digest, size, &sink)?;
    Ok(Some(sink.0.into_inner().unwrap_or_else(|e| e.into_inner())))
}

/// Blobs held in memory.
struct MemoryBlobs(Vec<(String, Vec<u8>)>);

impl BlobSource for MemoryBlobs {
    fn open(&self, digest: &str) -> std::io::Result<(Box<dyn std::io::Read>, u64)> {
        let (_, bytes) =
            self.0.iter().find(|(d, _)| d == digest).ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotFound, digest.to_owned())
            })?;
        Ok((
            Box::new(std::io::Cursor::new(bytes.clone())),
            bytes.len() as u64,
        ))
    }
}

/// A sink that keeps the one blob it receives.
#[derive(Default)]
struct MemorySink(Mutex<Vec<u8>>);

impl BlobSink for MemorySink {
    fn put(
        &self,
        _digest: &str,
        _size: u64,
        reader: &mut dyn std::io::Read,
    ) -> std::io::Result<()> {
        let mut buf = Vec::new();
        reader.read_to_end(&mut buf)?;
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = buf;
        Ok(())
    }
}
