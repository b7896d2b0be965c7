//! Scan results cached per (image manifest digest, release, database version) under the store root,
//! as plain JSON files (not in the store's SQLite schema): `<root>/scan-cache/<key>.json`.
//! VEX is applied after the cache, so changing VEX files never needs a new match.

use std::path::{Path, PathBuf};

use super::matcher::Matched;

/// The cache directory under a store root.
pub fn dir(store_root: &Path) -> PathBuf {
    store_root.join("scan-cache")
}

fn key_path(store_root: &Path, digest: &str, release: &str, db_version: &str) -> PathBuf {
    let key = blake3::hash(format!("himg-scan-v1\0{digest}\0{release}\0{db_version}").as_bytes());
    dir(store_root).join(format!("{}.json", &key.to_hex()[..32]))
}

/// The cached match, if any (a damaged entry is a miss).
pub fn get(store_root: &Path, digest: &str, release: &str, db_version: &str) -> Option<Matched> {
    let bytes = std::fs::read(key_path(store_root, digest, release, db_version)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Stores a match (write to a temporary file, then rename). Failures only cost a later re-match.
pub fn put(store_root: &Path, digest: &str, release: &str, db_version: &str, matched: &Matched) {
    let path = key_path(store_root, digest, release, db_version);
    let Some(parent) = path.parent() else {
        return;
    };
    if std::fs::create_dir_all(parent).is_err() {
        return;
    }
    let Ok(bytes) = serde_json::to_vec(matched) else {
        return;
    };
    if let Ok(mut tmp) = tempfile::NamedTempFile::new_in(parent) {
        use std::io::Write;
        if tmp.write_all(&bytes).is_ok() {
            let _ = tmp.persist(&path);
        }
    }
}
