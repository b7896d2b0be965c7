//! A cache entry: the signed metadata record of one derivation output, the cache's `.narinfo`.
//!
//! Stored as JSON `{"entry": {...}, "signatures": ["NAME:base64", ...]}`. Each signature is over
//! `himg-cache-entry-v1\n` followed by the canonical JSON of `entry` (keys sorted, no whitespace),
//! so any change to any field, including the archive's hash, breaks every signature.

use himg_store::{B3Digest, ObjectRef, OutputPath, Sha256Digest, canonical_json};
use serde::{Deserialize, Serialize};

use super::CacheError;
use super::sign::{SecretKey, SignatureProblem, TrustedKeys};

/// The version of the entry record.
pub const ENTRY_VERSION: u32 = 1;
/// The largest entry record a cache may serve (bytes); a longer one is refused unread. An entry
/// lists an output's objects, a few dozen bytes each: this is room for ~100,000 of them.
pub const ENTRY_LIMIT: u64 = 8 << 20;
const DOMAIN: &[u8] = b"himg-cache-entry-v1\n";

/// What a cache knows about one derivation output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Record version (1).
    pub version: u32,
    /// The derivation key this output was built for.
    pub key: B3Digest,
    /// The output's name in the store.
    pub path: OutputPath,
    /// The output's content object (its content hash).
    pub content: ObjectRef,
    /// The output's size as the composer counts it.
    pub size: u64,
    /// The composer's metadata of the output.
    pub meta: serde_json::Value,
    /// The outputs it was built from (informational: a substituted output needs only `objects`).
    pub references: Vec<OutputPath>,
    /// The objects the archive holds (with everything they reach), registered as the output's
    /// object references.
    pub objects: Vec<ObjectRef>,
    /// The archive format, `himg-archive-v1`.
    pub format: String,
    /// How the archive file is compressed: `zstd`.
    pub compression: String,
    /// SHA-256 of the archive file.
    pub file_hash: Sha256Digest,
    /// Size of the archive file in bytes.
    pub file_size: u64,
    /// Bytes of the objects, uncompressed.
    pub nar_size: u64,
}

/// An entry with its signatures, as stored in a cache.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedEntry {
    pub entry: Entry,
    pub signatures: Vec<String>,
}

impl Entry {
    /// The bytes that are signed.
    pub fn fingerprint(&self) -> Result<Vec<u8>, CacheError> {
        let value = serde_json::to_value(self).map_err(|e| CacheError::Entry(e.to_string()))?;
        let mut out = DOMAIN.to_vec();
        out.extend_from_slice(canonical_json(&value).as_bytes());
        Ok(out)
    }

    /// Signs the entry with `key`.
    pub fn sign(self, key: &SecretKey) -> Result<SignedEntry, CacheError> {
        let sig = key.sign(&self.fingerprint()?);
        Ok(SignedEntry {
            entry: self,
            signatures: vec![sig],
        })
    }
}

impl SignedEntry {
    /// The stored form: canonical JSON.
    pub fn to_bytes(&self) -> Result<Vec<u8>, CacheError> {
        let value = serde_json::to_value(self).map_err(|e| CacheError::Entry(e.to_string()))?;
        Ok(canonical_json(&value).into_bytes())
    }

    /// Parses the stored form.
    pub fn parse(bytes: &[u8]) -> Result<SignedEntry, CacheError> {
        serde_json::from_slice(bytes).map_err(|e| CacheError::Entry(e.to_string()))
    }

    /// Checks that this is the entry for `key`, of a known format, signed by a trusted key.
    pub fn verify(&self, key: &B3Digest, trusted: &TrustedKeys) -> Result<(), String> {
        let e = &self.entry;
        if e.version != ENTRY_VERSION {
            return Err(format!("unsupported entry version {}", e.version));
        }
        if e.key != *key {
            return Err(format!("the entry is for derivation {}, not {key}", e.key));
        }
        if e.format != super::archive::FORMAT || e.compression != "zstd" {
            return Err(format!(
                "unsupported archive `{}` compressed with `{}`",
                e.format, e.compression
            ));
        }
        if !e.objects.contains(&e.content) {
            return Err("the entry's objects do not include its content".into());
        }
        let fp = e.fingerprint().map_err(|e| e.to_string())?;
        trusted
            .check(&fp, &self.signatures)
            .map(|_| ())
            .map_err(|p: SignatureProblem| p.to_string())
    }
}
