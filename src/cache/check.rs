//! What a substituted entry declares, checked against the bytes it brought before its output is
//! registered: a signed entry must not leave the store in a state where later builds fail or
//! ship an inconsistent image.
//!
//! The store checks what it can on its own (every object is re-hashed as it is written, and a
//! tree's file sizes must be its blobs'); this adds what only the composer's metadata says: an
//! OCI blob's size (it becomes a descriptor's size), a layer's `diff_id` (it goes into the
//! image config, recomputed from the decompressed layer), and a file set's file sizes.

use std::io::{self, Read};

use himg_store::{ObjectRef, Store};
use sha2::Digest as _;

use super::entry::Entry;
use crate::oci::media_types;

/// Checks `e` against the objects now in `store`; the reason it is refused otherwise.
pub fn check_declared(store: &Store, e: &Entry) -> Result<(), String> {
    if let ObjectRef::Blob(b) = e.content
        && e.meta.get("removed_bytes").is_some()
    {
        return check_fileset(store, &b);
    }
    let ObjectRef::Oci(d) = e.content else {
        return Ok(());
    };
    let path = store.oci_blob_path(&d);
    let actual = std::fs::metadata(&path)
        .map_err(|err| format!("{}: {err}", path.display()))?
        .len();
    if actual != e.size {
        return Err(format!(
            "the entry declares {} bytes for {}, which has {actual}",
            e.size, e.content
        ));
    }
    let Some(diff_id) = e.meta.get("diff_id").and_then(|v| v.as_str()) else {
        return Ok(());
    };
    let media_type = e
        .meta
        .get("media_type")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    let file = store
        .open_oci_blob(&d)
        .map_err(|err| format!("{}: {err}", e.content))?;
    let reader = io::BufReader::with_capacity(256 * 1024, file);
    let decoded: Box<dyn Read> = match media_type {
        media_types::LAYER_TAR | media_types::DOCKER_LAYER_TAR => Box::new(reader),
        media_types::LAYER_TAR_GZIP | media_types::DOCKER_LAYER_TAR_GZIP => {
            Box::new(flate2::read::MultiGzDecoder::new(reader))
        }
        media_types::LAYER_TAR_ZSTD | media_types::DOCKER_LAYER_TAR_ZSTD => Box::new(
            zstd::stream::read::Decoder::with_buffer(reader)
                .map_err(|err| format!("{}: {err}", e.content))?,
        ),
        other => return Err(format!("a layer of unknown media type `{other}`")),
    };
    let actual = diff_id_of(decoded).map_err(|err| format!("{}: {err}", e.content))?;
    if actual != diff_id {
        return Err(format!(
            "the entry declares diff_id {diff_id} for {}, whose uncompressed bytes hash to {actual}",
            e.content
        ));
    }
    Ok(())
}

/// A file set (an unpacked package, the generated system files: its metadata has
/// `removed_bytes`) lists each file's blob and size; the sizes must be the blobs'.
fn check_fileset(store: &Store, manifest: &himg_store::B3Digest) -> Result<(), String> {
    use crate::debian::unpack::DebEntryKind;
    let bytes = store
        .read_blob(manifest)
        .map_err(|err| format!("file set {manifest}: {err}"))?;
    let set: crate::debian::fileset::FileSet = serde_json::from_slice(&bytes)
        .map_err(|err| format!("file set {manifest} does not parse: {err}"))?;
    for entry in &set.entries {
        let DebEntryKind::File { size, content } = &entry.kind else {
            continue;
        };
        let blob = himg_store::B3Digest::try_from(content.as_str())
            .map_err(|err| format!("file set {manifest}: `{}`: {err}", entry.path))?;
        let actual = std::fs::metadata(store.blob_path(&blob))
            .map_err(|err| format!("file set {manifest}: `{}`: {err}", entry.path))?
            .len();
        if actual != *size {
            return Err(format!(
                "file set {manifest} declares {size} bytes for `{}`, but its blob {blob} has {actual}",
                entry.path
            ));
        }
    }
    Ok(())
}

/// `sha256:<hex>` of what `r` yields.
fn diff_id_of(mut r: impl Read) -> io::Result<String> {
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        hasher.update(&buf[..n]);
    }
    Ok(format!("sha256:{}", hex::encode(hasher.finalize())))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use himg_store::{B3Digest, OutputPath};

    use super::*;

    fn entry(content: ObjectRef, size: u64, meta: serde_json::Value) -> Entry {
        let key = B3Digest::of(b"key");
        Entry {
            version: 1,
            key,
            path: OutputPath::new(&key, "layer").expect("path"),
            content,
            size,
            meta,
            references: vec![],
            objects: vec![content],
            format: crate::cache::archive::FORMAT.into(),
            compression: "zstd".into(),
            file_hash: himg_store::Sha256Digest::of(b""),
            file_size: 0,
            nar_size: 0,
        }
    }

    #[test]
    fn sizes_and_diff_ids_are_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let tar = b"pretend this is a tar".to_vec();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&tar).expect("gzip");
        let blob = gz.finish().expect("gzip");
        let d = store.put_oci_blob(&blob).expect("put");
        let content = ObjectRef::Oci(d);
        let good = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&tar)));
        let meta = |diff_id: &str| serde_json::json!({"diff_id": diff_id, "media_type": media_types::LAYER_TAR_GZIP});
        let size = blob.len() as u64;
        check_declared(&store, &entry(content, size, meta(&good))).expect("consistent");
        let lie =
            check_declared(&store, &entry(content, size + 1, meta(&good))).expect_err("size lie");
        assert!(lie.contains("declares"), "{lie}");
        let other = format!("sha256:{}", "0".repeat(64));
        let lie =
            check_declared(&store, &entry(content, size, meta(&other))).expect_err("diff_id lie");
        assert!(lie.contains("diff_id"), "{lie}");
    }

    #[test]
    fn file_set_sizes_are_checked() {
        use crate::debian::fileset::FileSet;
        use crate::debian::unpack::{DebEntry, DebEntryKind};
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let blob = store.put_blob(b"abc").expect("blob");
        let set = |size: u64| {
            let set = FileSet::of_entries(vec![DebEntry {
                path: "/etc/x".into(),
                kind: DebEntryKind::File {
                    size,
                    content: blob.to_string(),
                },
                mode: 0o644,
                uid: 0,
                gid: 0,
                shipped_path: None,
            }]);
            let bytes = crate::oci::canonical_json(&set).expect("json");
            let manifest = store.put_blob(&bytes).expect("put");
            entry(
                ObjectRef::Blob(manifest),
                bytes.len() as u64,
                serde_json::json!({"removed_bytes": 0, "removed_files": 0}),
            )
        };
        check_declared(&store, &set(3)).expect("consistent");
        let lie = check_declared(&store, &set(4)).expect_err("size lie");
        assert!(lie.contains("declares 4 bytes for `/etc/x`"), "{lie}");
    }
}
