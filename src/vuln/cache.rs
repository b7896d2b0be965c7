//! Scan results cached per (image manifest digest, release, database version) under the store root,
//! as plain JSON files (not in the store's SQLite schema): `<root>/scan-cache/<digest hex>/<key>.json`.
//! VEX is applied after the cache, so changing VEX files never needs a new match.

use std::path::Path;

use super::matcher::Matched;
use crate::digest_cache::DigestCache;

/// The cache under a store root.
pub fn cache(store_root: &Path) -> DigestCache {
    DigestCache::new(store_root, "scan-cache")
}

fn key(release: &str, db_version: &str) -> String {
    let key = blake3::hash(format!("himg-scan-v2\0{release}\0{db_version}").as_bytes());
    key.to_hex()[..32].to_string()
}

/// The cached match, if any (a damaged entry is a miss).
pub fn get(store_root: &Path, digest: &str, release: &str, db_version: &str) -> Option<Matched> {
    let bytes = cache(store_root).read(digest, &key(release, db_version))?;
    serde_json::from_slice(&bytes).ok()
}

/// Stores a match. Failures only cost a later re-match.
pub fn put(store_root: &Path, digest: &str, release: &str, db_version: &str, matched: &Matched) {
    if let Ok(bytes) = serde_json::to_vec(matched) {
        cache(store_root).write(digest, &key(release, db_version), &bytes);
    }
}
