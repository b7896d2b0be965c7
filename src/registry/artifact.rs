//! OCI artifacts that refer to an image: one payload (a promotion record, an SBOM, a provenance
//! envelope) as the single layer of an image manifest with an `artifactType`, the empty config and
//! a `subject` naming the image's manifest.
//!
//! Each is tagged `sha256-<hex>.<suffix>`, which is how himg finds one kind of artifact in one
//! request. For every other client, the artifact is also listed as a referrer of its subject
//! (distribution-spec v1.1): a registry with the referrers API (`/v2/NAME/referrers/DIGEST`)
//! indexes it by itself; on one without it (Debian's docker-registry among them) the image index
//! under the fallback tag `sha256-<hex>` is updated (read, add, write; sorted by artifact type and
//! digest). Two clients updating that index at the same moment can lose one entry — the spec's own
//! caveat for the fallback — while the suffix tags are never lost.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::{
    BlobSink, BlobSource, Client, OCI_INDEX, OCI_MANIFEST, Reference, RegistryError, sha256_digest,
};

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
    let manifest: serde_json::Value = serde_json::from_slice(manifest_bytes)
        .map_err(|e| RegistryError::Protocol(format!("artifact manifest is not JSON: {e}")))?;
    let referrer = Referrer {
        digest: report.manifest_digest.clone(),
        size: manifest_bytes.len() as u64,
        artifact_type: manifest["artifactType"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        annotations: serde_json::from_value(manifest["annotations"].clone()).unwrap_or_default(),
    };
    if let Some(subject) = manifest["subject"]["digest"].as_str() {
        link_referrer(client, repository, subject, referrer)?;
    }
    Ok(report.manifest_digest)
}

/// A manifest that refers to a subject, as a referrers index lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Referrer {
    pub digest: String,
    pub size: u64,
    pub artifact_type: String,
    pub annotations: BTreeMap<String, String>,
}

impl Referrer {
    /// Its descriptor in a referrers index.
    fn descriptor(&self) -> serde_json::Value {
        let mut d = serde_json::json!({
            "mediaType": OCI_MANIFEST,
            "digest": self.digest,
            "size": self.size,
            "artifactType": self.artifact_type,
        });
        if !self.annotations.is_empty() {
            d["annotations"] = serde_json::json!(self.annotations);
        }
        d
    }

    /// Reads an index descriptor; `None` when it lacks a size or a valid `sha256:<hex>` digest.
    fn from_descriptor(d: &serde_json::Value) -> Option<Referrer> {
        let digest: crate::oci::Sha256Digest = d["digest"].as_str()?.parse().ok()?;
        Some(Referrer {
            digest: digest.to_string(),
            size: d["size"].as_u64()?,
            artifact_type: d["artifactType"].as_str().unwrap_or_default().to_owned(),
            annotations: serde_json::from_value(d["annotations"].clone()).unwrap_or_default(),
        })
    }
}

/// The fallback referrers tag of manifest `digest` (`sha256:<hex>`): `sha256-<hex>`.
pub fn referrers_tag(digest: &str) -> Option<String> {
    tag(digest, "x").map(|t| t.trim_end_matches(".x").to_owned())
}

/// The manifests in `repository`'s repository whose subject is `subject_digest`: from the
/// referrers API when the registry has it, else from the fallback tag's index; sorted by
/// artifact type and digest.
pub fn referrers(
    client: &Client,
    repository: &Reference,
    subject_digest: &str,
) -> Result<Vec<Referrer>, RegistryError> {
    let index = match client.referrers(repository, subject_digest)? {
        Some(bytes) => Some(bytes),
        None => fallback_index(client, repository, subject_digest)?,
    };
    Ok(listed_in(index.as_deref()))
}

/// The referrers an index lists, sorted by artifact type and digest; none for no index or one
/// that is not JSON.
fn listed_in(index: Option<&[u8]>) -> Vec<Referrer> {
    let mut out: Vec<Referrer> = index
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
        .and_then(|v| v["manifests"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(Referrer::from_descriptor)
        .collect();
    out.sort_by(|a, b| (&a.artifact_type, &a.digest).cmp(&(&b.artifact_type, &b.digest)));
    out
}

/// The index under the fallback tag of `subject_digest`; `None` when there is none.
fn fallback_index(
    client: &Client,
    repository: &Reference,
    subject_digest: &str,
) -> Result<Option<Vec<u8>>, RegistryError> {
    let Some(tag) = referrers_tag(subject_digest) else {
        return Ok(None);
    };
    match client.manifest(&in_repository(repository, Some(tag))) {
        Ok((media_type, bytes, _)) if media_type == OCI_INDEX => Ok(Some(bytes)),
        Ok(_) => Ok(None),
        Err(RegistryError::Status { status: 404, .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Lists `referrer` among `subject_digest`'s referrers: nothing to do on a registry with the
/// referrers API; else the fallback tag's index gains it (an entry with its digest is replaced).
fn link_referrer(
    client: &Client,
    repository: &Reference,
    subject_digest: &str,
    referrer: Referrer,
) -> Result<(), RegistryError> {
    if client.referrers(repository, subject_digest)?.is_some() {
        return Ok(());
    }
    let Some(tag) = referrers_tag(subject_digest) else {
        return Ok(());
    };
    let current = fallback_index(client, repository, subject_digest)?;
    let mut listed = listed_in(current.as_deref());
    listed.retain(|r| r.digest != referrer.digest);
    listed.push(referrer);
    listed.sort_by(|a, b| (&a.artifact_type, &a.digest).cmp(&(&b.artifact_type, &b.digest)));
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": listed.iter().map(Referrer::descriptor).collect::<Vec<_>>(),
    });
    let bytes = crate::oci::canonical_json(&index)
        .map_err(|e| RegistryError::Protocol(format!("referrers index: {e}")))?;
    if current.as_deref() == Some(bytes.as_slice()) {
        return Ok(());
    }
    client.push(
        &in_repository(repository, Some(tag)),
        OCI_INDEX,
        &bytes,
        &[],
        &[],
        &MemoryBlobs(Vec::new()),
    )?;
    Ok(())
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
        _digest: &crate::oci::Sha256Digest,
        _size: u64,
        reader: &mut dyn std::io::Read,
    ) -> std::io::Result<()> {
        let mut buf = Vec::new();
        reader.read_to_end(&mut buf)?;
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = buf;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! The referrers-API branch, against a scripted loopback HTTP peer (no registry at hand here
    //! offers the API; the fallback branch runs against Debian's docker-registry in
    //! `tests/image_diff.rs` and `tests/promote.rs`).

    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::registry::ClientOptions;

    /// Answers every request with `answer(method, path)`; records `METHOD PATH` lines.
    fn peer(
        answer: fn(&str, &str) -> (u16, &'static str, String),
    ) -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    let mut parts = line.split_whitespace();
                    let (method, path) = (
                        parts.next().unwrap_or("").to_owned(),
                        parts.next().unwrap_or("").to_owned(),
                    );
                    let mut length = 0usize;
                    loop {
                        let mut h = String::new();
                        reader.read_line(&mut h).unwrap();
                        if h == "\r\n" || h.is_empty() {
                            break;
                        }
                        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0u8; length];
                    std::io::Read::read_exact(&mut reader, &mut body).unwrap();
                    log.lock().unwrap().push(format!("{method} {path}"));
                    let (status, content_type, text) = answer(&method, &path);
                    let reply = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{text}",
                        text.len()
                    );
                    if stream.write_all(reply.as_bytes()).is_err() {
                        break;
                    }
                }
            }
        });
        (addr, seen)
    }

    const SUBJECT: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const C: &str = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";

    fn client() -> Client {
        Client::new(ClientOptions {
            insecure: true,
            ..ClientOptions::default()
        })
    }

    #[test]
    fn a_registry_with_the_referrers_api_is_asked_and_its_index_left_to_it() {
        fn answer(method: &str, path: &str) -> (u16, &'static str, String) {
            if method == "GET" && path.contains("/referrers/") {
                let index = serde_json::json!({
                    "schemaVersion": 2,
                    "mediaType": OCI_INDEX,
                    "manifests": [
                        {"mediaType": OCI_MANIFEST, "digest": B, "size": 5,
                         "artifactType": "application/spdx+json"},
                        {"mediaType": OCI_MANIFEST, "digest": A, "size": 7,
                         "artifactType": "application/spdx+json",
                         "annotations": {"org.opencontainers.image.created": "1970-01-01T00:00:01Z"}},
                        {"mediaType": OCI_MANIFEST, "size": 1},
                        {"mediaType": OCI_MANIFEST, "digest": "sha256:../../x", "size": 1},
                    ],
                });
                return (200, OCI_INDEX, index.to_string());
            }
            (404, "text/plain", String::new())
        }
        let (addr, seen) = peer(answer);
        let repo: Reference = format!("{addr}/team/app").parse().unwrap();
        let listed = referrers(&client(), &repo, SUBJECT).unwrap();
        // Sorted by type then digest; a descriptor without a valid digest is skipped.
        let digests: Vec<&str> = listed.iter().map(|r| r.digest.as_str()).collect();
        assert_eq!(digests, [A, B]);
        assert_eq!(
            listed[0].annotations["org.opencontainers.image.created"],
            "1970-01-01T00:00:01Z"
        );
        // Linking asks the API and writes nothing: the registry indexes subjects itself.
        let referrer = listed[0].clone();
        seen.lock().unwrap().clear();
        link_referrer(&client(), &repo, SUBJECT, referrer).unwrap();
        let requests = seen.lock().unwrap().clone();
        assert_eq!(requests, [format!("GET /v2/team/app/referrers/{SUBJECT}")]);
    }

    #[test]
    fn a_registry_without_it_is_read_through_the_fallback_tag() {
        fn answer(method: &str, path: &str) -> (u16, &'static str, String) {
            if method == "GET" && path.ends_with("/manifests/sha256-1111111111111111111111111111111111111111111111111111111111111111") {
                let index = serde_json::json!({
                    "schemaVersion": 2,
                    "mediaType": OCI_INDEX,
                    "manifests": [{"mediaType": OCI_MANIFEST, "digest": C, "size": 3,
                                   "artifactType": "application/vnd.dsse.envelope.v1+json"}],
                });
                return (200, OCI_INDEX, index.to_string());
            }
            (404, "text/plain", String::new())
        }
        let (addr, seen) = peer(answer);
        let repo: Reference = format!("{addr}/team/app").parse().unwrap();
        let listed = referrers(&client(), &repo, SUBJECT).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(
            listed[0].artifact_type,
            "application/vnd.dsse.envelope.v1+json"
        );
        let requests = seen.lock().unwrap().clone();
        assert_eq!(requests[0], format!("GET /v2/team/app/referrers/{SUBJECT}"));
        assert!(requests[1].starts_with("GET /v2/team/app/manifests/sha256-1111"));
        assert_eq!(referrers_tag("sha256:zz"), None);
    }
}
