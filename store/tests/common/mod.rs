//! Helpers shared by the integration tests.
#![allow(dead_code)]

use himg_store::{B3Digest, ObjectRef, OutputPath, OutputRecord, Store};

pub fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open store");
    (dir, store)
}

pub fn key(s: &str) -> B3Digest {
    B3Digest::of(s.as_bytes())
}

pub fn out_path(name: &str) -> OutputPath {
    OutputPath::new(&key(name), name).expect("valid output path")
}

/// An output whose content is a blob holding `data`.
pub fn blob_output(store: &Store, name: &str, data: &[u8]) -> OutputRecord {
    let blob = store.put_blob(data).expect("put blob");
    OutputRecord {
        path: out_path(name),
        content: ObjectRef::Blob(blob),
        size: data.len() as u64,
        meta: serde_json::json!({ "name": name }),
        refs_outputs: vec![],
        refs_objects: vec![],
    }
}

/// Flips one bit in a read-only store file.
pub fn flip_byte(path: &std::path::Path, at: usize) {
    use std::os::unix::fs::PermissionsExt;
    let mut data = std::fs::read(path).expect("read");
    let at = at.min(data.len() - 1);
    data[at] ^= 0x01;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    std::fs::write(path, data).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o444)).expect("chmod");
}
