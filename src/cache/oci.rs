//! `oci://REGISTRY/REPO`: a cache in an OCI registry. Not implemented yet.

use std::io::Write;
use std::path::Path;

use himg_store::{B3Digest, Sha256Digest};

use super::CacheError;
use super::backend::Backend;

/// A cache in an OCI registry repository.
#[derive(Debug)]
pub struct OciBackend {
    url: String,
}

impl OciBackend {
    pub fn new(url: &str) -> Result<OciBackend, CacheError> {
        Ok(OciBackend {
            url: url.to_owned(),
        })
    }

    fn todo(&self) -> CacheError {
        CacheError::Backend {
            cache: self.url.clone(),
            message: "oci:// caches are not implemented yet".into(),
        }
    }
}

impl Backend for OciBackend {
    fn url(&self) -> &str {
        &self.url
    }
    fn get_entry(&self, _key: &B3Digest) -> Result<Option<Vec<u8>>, CacheError> {
        Err(self.todo())
    }
    fn has_entry(&self, _key: &B3Digest) -> Result<bool, CacheError> {
        Err(self.todo())
    }
    fn has_archive(&self, _hash: &Sha256Digest) -> Result<bool, CacheError> {
        Err(self.todo())
    }
    fn get_archive(&self, _hash: &Sha256Digest, _out: &mut dyn Write) -> Result<u64, CacheError> {
        Err(self.todo())
    }
    fn put_archive(&self, _h: &Sha256Digest, _s: u64, _f: &Path) -> Result<(), CacheError> {
        Err(self.todo())
    }
    fn put_entry(
        &self,
        _key: &B3Digest,
        _entry: &[u8],
        _archive: (&Sha256Digest, u64),
    ) -> Result<(), CacheError> {
        Err(self.todo())
    }
}
