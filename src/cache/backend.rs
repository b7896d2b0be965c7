//! The one trait every cache location implements, and opening one from its URL.
//!
//! A cache holds two kinds of things: signed entries named by derivation key, and archive files
//! named by their SHA-256 (so equal outputs under different keys are stored once).

use std::io::Write;
use std::path::Path;

use himg_store::{B3Digest, Sha256Digest};

use super::CacheError;

/// A cache location.
pub trait Backend: Send + Sync {
    /// The URL it was opened from, for messages.
    fn url(&self) -> &str;
    /// The stored (signed) entry for `key`, or `None`.
    fn get_entry(&self, key: &B3Digest) -> Result<Option<Vec<u8>>, CacheError>;
    /// Whether an entry for `key` exists.
    fn has_entry(&self, key: &B3Digest) -> Result<bool, CacheError>;
    /// Whether the archive file `hash` exists.
    fn has_archive(&self, hash: &Sha256Digest) -> Result<bool, CacheError>;
    /// Streams archive file `hash` into `out`; returns the bytes written. A missing archive is an
    /// error.
    fn get_archive(
        &self,
        hash: &Sha256Digest,
        size: u64,
        out: &mut dyn Write,
    ) -> Result<u64, CacheError>;
    /// Uploads the archive file at `file`, whose SHA-256 is `hash`.
    fn put_archive(&self, hash: &Sha256Digest, size: u64, file: &Path) -> Result<(), CacheError>;
    /// Uploads the entry for `key` (after its archive).
    fn put_entry(
        &self,
        key: &B3Digest,
        entry: &[u8],
        archive: (&Sha256Digest, u64),
    ) -> Result<(), CacheError>;
}

/// How to reach caches: the bearer token for HTTP caches, plain http for OCI registries.
#[derive(Debug, Clone, Default)]
pub struct BackendOptions {
    /// Sent as `Authorization: Bearer TOKEN` to HTTP caches.
    pub token: Option<String>,
}

/// Opens the cache at `url`: `file://DIR`, `http(s)://HOST/PATH` or `oci://REGISTRY/REPO`.
pub fn open_backend(url: &str, opts: &BackendOptions) -> Result<Box<dyn Backend>, CacheError> {
    if let Some(dir) = url.strip_prefix("file://") {
        if !dir.starts_with('/') {
            return Err(CacheError::Url(url.to_owned()));
        }
        return Ok(Box::new(super::file::FileBackend::new(url, Path::new(dir))));
    }
    if url.starts_with("http://") || url.starts_with("https://") {
        return Ok(Box::new(super::http::HttpBackend::new(
            url,
            opts.token.clone(),
        )));
    }
    if url.starts_with("oci://") {
        return Ok(Box::new(super::oci::OciBackend::new(url)?));
    }
    Err(CacheError::Url(url.to_owned()))
}

/// The path of an entry inside a cache: `entries/<hex>.json`.
pub fn entry_path(key: &B3Digest) -> String {
    format!("entries/{}.json", key.to_hex())
}

/// The path of an archive inside a cache: `archives/<sha256 hex>.zst`.
pub fn archive_path(hash: &Sha256Digest) -> String {
    format!("archives/{}.zst", hash.to_hex())
}
