//! `oci://REGISTRY/REPO`: a cache in an OCI registry (distribution, Harbor, ECR, GHCR…), through
//! the registry client of `himg push` (same credentials, auth and blob upload).
//!
//! Each entry is an OCI artifact: an image manifest with `artifactType`
//! `application/vnd.himg.cache.entry.v1`, whose config blob is the signed entry
//! (`application/vnd.himg.cache.entry.v1+json`) and whose one layer is the archive
//! (`application/vnd.himg.cache.archive.v1+zstd`), tagged with the derivation key in hex. Archives
//! are blobs named by their SHA-256, so the registry stores each once however many entries name it.
//! Plain HTTP is used only for registries on the loopback interface (127.0.0.0/8, localhost, [::1]).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use himg_store::{B3Digest, Sha256Digest};

use super::CacheError;
use super::backend::Backend;
use crate::registry::{
    BlobSink, BlobSource, Client, ClientOptions, Credentials, OCI_MANIFEST, Reference,
    RegistryError,
};

/// The artifact type of a cache entry.
pub const ARTIFACT_TYPE: &str = "application/vnd.himg.cache.entry.v1";
/// The media type of the entry blob (the manifest's config).
pub const ENTRY_MEDIA_TYPE: &str = "application/vnd.himg.cache.entry.v1+json";
/// The media type of the archive blob (the manifest's layer).
pub const ARCHIVE_MEDIA_TYPE: &str = "application/vnd.himg.cache.archive.v1+zstd";

/// A cache in an OCI registry repository.
pub struct OciBackend {
    url: String,
    registry: String,
    repository: String,
    client: Client,
    /// Archives handed to `put_archive`, uploaded with their entry's manifest.
    staged: Mutex<BTreeMap<Sha256Digest, PathBuf>>,
}

impl std::fmt::Debug for OciBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OciBackend")
            .field("url", &self.url)
            .finish()
    }
}

impl OciBackend {
    pub fn new(url: &str) -> Result<OciBackend, CacheError> {
        let rest = url.strip_prefix("oci://").unwrap_or(url);
        let probe: Reference = rest.parse().map_err(|_| CacheError::Url(url.to_owned()))?;
        if probe.tag.is_some() || probe.digest.is_some() {
            return Err(CacheError::Url(url.to_owned()));
        }
        let client = Client::new(ClientOptions {
            insecure: crate::registry::base::is_loopback_registry(&probe.registry),
            credentials: Credentials::from_env()?,
            ..ClientOptions::default()
        });
        Ok(OciBackend {
            url: url.to_owned(),
            registry: probe.registry,
            repository: probe.repository,
            client,
            staged: Mutex::new(BTreeMap::new()),
        })
    }

    fn reference(&self, tag: Option<String>) -> Reference {
        Reference {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag,
            digest: None,
        }
    }

    fn err(&self, e: impl std::fmt::Display) -> CacheError {
        CacheError::Backend {
            cache: self.url.clone(),
            message: e.to_string(),
        }
    }

    /// The manifest of `key`'s entry, or `None`.
    fn entry_manifest(&self, key: &B3Digest) -> Result<Option<serde_json::Value>, CacheError> {
        match self.client.manifest(&self.reference(Some(key.to_hex()))) {
            Ok((_, bytes, _)) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| self.err(format!("entry manifest: {e}"))),
            Err(RegistryError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(self.err(e)),
        }
    }
}

/// A sink that writes the one blob it receives into a writer.
struct WriteSink<'a> {
    out: RefCell<&'a mut dyn Write>,
    written: RefCell<u64>,
}

impl BlobSink for WriteSink<'_> {
    fn put(
        &self,
        _digest: &crate::oci::Sha256Digest,
        _size: u64,
        reader: &mut dyn Read,
    ) -> io::Result<()> {
        let mut out = self.out.borrow_mut();
        let n = io::copy(reader, &mut *out)?;
        *self.written.borrow_mut() += n;
        Ok(())
    }
}

/// Serves the entry from memory and archives from staged files.
struct Source<'a> {
    entry: (&'a str, &'a [u8]),
    archive: (&'a str, &'a Path),
}

impl BlobSource for Source<'_> {
    fn open(&self, digest: &str) -> io::Result<(Box<dyn Read>, u64)> {
        if digest == self.entry.0 {
            return Ok((
                Box::new(io::Cursor::new(self.entry.1.to_vec())),
                self.entry.1.len() as u64,
            ));
        }
        if digest == self.archive.0 {
            let f = std::fs::File::open(self.archive.1)?;
            let len = f.metadata()?.len();
            return Ok((Box::new(f), len));
        }
        Err(io::Error::new(io::ErrorKind::NotFound, digest.to_owned()))
    }
}

fn blob_of(manifest: &serde_json::Value, media_type: &str) -> Option<(String, u64)> {
    let descs =
        std::iter::once(manifest.get("config")?).chain(manifest.get("layers")?.as_array()?.iter());
    for d in descs {
        if d.get("mediaType")?.as_str()? == media_type {
            return Some((
                d.get("digest")?.as_str()?.to_owned(),
                d.get("size")?.as_u64()?,
            ));
        }
    }
    None
}

impl Backend for OciBackend {
    fn url(&self) -> &str {
        &self.url
    }

    fn get_entry(&self, key: &B3Digest) -> Result<Option<Vec<u8>>, CacheError> {
        let Some(manifest) = self.entry_manifest(key)? else {
            return Ok(None);
        };
        let (digest, size) = blob_of(&manifest, ENTRY_MEDIA_TYPE).ok_or_else(|| {
            self.err(format!(
                "the manifest tagged {} is not a cache entry",
                key.to_hex()
            ))
        })?;
        if size > super::entry::ENTRY_LIMIT {
            return Err(self.err(format!(
                "the entry of {} is {size} bytes, more than the {} bytes an entry may have",
                key.to_hex(),
                super::entry::ENTRY_LIMIT
            )));
        }
        let mut buf = Vec::new();
        {
            let sink = WriteSink {
                out: RefCell::new(&mut buf),
                written: RefCell::new(0),
            };
            self.client
                .blob(&self.reference(None), &digest, size, &sink)
                .map_err(|e| self.err(e))?;
        }
        Ok(Some(buf))
    }

    fn has_entry(&self, key: &B3Digest) -> Result<bool, CacheError> {
        Ok(self.entry_manifest(key)?.is_some())
    }

    fn has_archive(&self, hash: &Sha256Digest) -> Result<bool, CacheError> {
        self.client
            .has_blob(&self.reference(None), &hash.to_string())
            .map_err(|e| self.err(e))
    }

    fn get_archive(
        &self,
        hash: &Sha256Digest,
        size: u64,
        out: &mut dyn Write,
    ) -> Result<u64, CacheError> {
        // The client checks the size and digest as it streams.
        let sink = WriteSink {
            out: RefCell::new(out),
            written: RefCell::new(0),
        };
        let r = self
            .client
            .blob(&self.reference(None), &hash.to_string(), size, &sink);
        let written = *sink.written.borrow();
        match r {
            Ok(()) => Ok(written),
            Err(e) => Err(self.err(e)),
        }
    }

    fn put_archive(&self, hash: &Sha256Digest, _size: u64, file: &Path) -> Result<(), CacheError> {
        self.staged
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(*hash, file.to_owned());
        Ok(())
    }

    fn put_entry(
        &self,
        key: &B3Digest,
        entry: &[u8],
        archive: (&Sha256Digest, u64),
    ) -> Result<(), CacheError> {
        let entry_digest = crate::registry::sha256_digest(entry);
        let archive_digest = archive.0.to_string();
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": ARTIFACT_TYPE,
            "config": {"mediaType": ENTRY_MEDIA_TYPE, "digest": entry_digest, "size": entry.len()},
            "layers": [{"mediaType": ARCHIVE_MEDIA_TYPE, "digest": archive_digest, "size": archive.1}],
        });
        let bytes = himg_store::canonical_json(&manifest).into_bytes();
        let staged = self
            .staged
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(archive.0);
        // An archive the registry already has was not staged; the client skips existing blobs.
        let placeholder = PathBuf::new();
        let source = Source {
            entry: (&entry_digest, entry),
            archive: (&archive_digest, staged.as_deref().unwrap_or(&placeholder)),
        };
        self.client
            .push(
                &self.reference(Some(key.to_hex())),
                OCI_MANIFEST,
                &bytes,
                &[],
                &[
                    (entry_digest.clone(), entry.len() as u64),
                    (archive_digest.clone(), archive.1),
                ],
                &source,
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}
