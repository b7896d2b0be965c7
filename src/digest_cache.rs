//! Small per-image caches kept beside the store, outside its database (test results, scan
//! matches): one JSON file per entry under `<store root>/<dir>/<manifest hex>/<key>.json`, written
//! atomically. Sharding by the image's manifest digest lets `himg store gc` drop the entries of
//! images the store no longer holds; losing an entry only costs recomputing it.

use std::path::{Path, PathBuf};

/// One cache directory under a store root.
#[derive(Debug, Clone)]
pub struct DigestCache {
    dir: PathBuf,
}

/// What [`DigestCache::collect`] removed (or would remove).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Collected {
    pub entries: u64,
    pub bytes: u64,
}

impl DigestCache {
    /// The cache `<store_root>/<name>`.
    pub fn new(store_root: &Path, name: &str) -> DigestCache {
        DigestCache {
            dir: store_root.join(name),
        }
    }

    /// Where the entry `key` of the image with manifest `digest` (`sha256:<hex>`) lives.
    fn path(&self, digest: &str, key: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        // Digests come from verified manifests; anything else is kept out of the path anyway.
        let shard: String = hex
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(64)
            .collect();
        self.dir.join(shard).join(format!("{key}.json"))
    }

    /// The entry's bytes; a missing or unreadable entry is a miss.
    pub fn read(&self, digest: &str, key: &str) -> Option<Vec<u8>> {
        std::fs::read(self.path(digest, key)).ok()
    }

    /// Stores an entry (temporary file, then rename). Failures only cost a later miss.
    pub fn write(&self, digest: &str, key: &str, bytes: &[u8]) {
        let path = self.path(digest, key);
        let Some(parent) = path.parent() else {
            return;
        };
        if std::fs::create_dir_all(parent).is_err() {
            return;
        }
        if let Ok(mut tmp) = tempfile::NamedTempFile::new_in(parent) {
            use std::io::Write;
            if tmp.write_all(bytes).is_ok() {
                let _ = tmp.persist(&path);
            }
        }
    }

    /// Removes the entries of every image `keep` rejects (given `sha256:<hex>`), and anything in
    /// the directory that is not a shard (older layouts, stray files). With `dry_run`, only counts.
    pub fn collect(
        &self,
        keep: &dyn Fn(&str) -> bool,
        dry_run: bool,
    ) -> std::io::Result<Collected> {
        let mut out = Collected::default();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_shard = entry.file_type()?.is_dir()
                && name.len() == 64
                && name.bytes().all(|b| b.is_ascii_hexdigit());
            if is_shard && keep(&format!("sha256:{name}")) {
                continue;
            }
            let path = entry.path();
            let (files, bytes) = size_of(&path)?;
            out.entries += files;
            out.bytes += bytes;
            if !dry_run {
                if entry.file_type()?.is_dir() {
                    std::fs::remove_dir_all(&path)?;
                } else {
                    std::fs::remove_file(&path)?;
                }
            }
        }
        Ok(out)
    }
}

/// Files and bytes under `path` (a file or a directory).
fn size_of(path: &Path) -> std::io::Result<(u64, u64)> {
    let md = std::fs::symlink_metadata(path)?;
    if !md.is_dir() {
        return Ok((1, md.len()));
    }
    let mut total = (0, 0);
    for entry in std::fs::read_dir(path)? {
        let (f, b) = size_of(&entry?.path())?;
        total.0 += f;
        total.1 += b;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_sharded_by_digest_and_collected_with_their_image() {
        let root = tempfile::tempdir().unwrap();
        let cache = DigestCache::new(root.path(), "c");
        let (a, b) = (
            format!("sha256:{}", "a".repeat(64)),
            format!("sha256:{}", "b".repeat(64)),
        );
        cache.write(&a, "k1", b"one");
        cache.write(&b, "k2", b"two!");
        std::fs::write(root.path().join("c/stray.json"), b"x").unwrap();
        assert_eq!(cache.read(&a, "k1").as_deref(), Some(&b"one"[..]));
        assert_eq!(cache.read(&a, "k2"), None);

        let keep_a = |d: &str| d == a;
        let dry = cache.collect(&keep_a, true).unwrap();
        assert_eq!(
            dry,
            Collected {
                entries: 2,
                bytes: 5
            }
        );
        assert_eq!(cache.read(&b, "k2").as_deref(), Some(&b"two!"[..]));
        assert_eq!(cache.collect(&keep_a, false).unwrap(), dry);
        assert_eq!(cache.read(&b, "k2"), None);
        assert_eq!(cache.read(&a, "k1").as_deref(), Some(&b"one"[..]));
        // A path-like digest cannot escape the cache directory.
        cache.write("sha256:../../x", "k", b"y");
        assert!(!root.path().join("x").exists());
    }
}
