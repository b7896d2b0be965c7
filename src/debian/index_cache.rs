//! The lifetime of the package-index cache (`<store>/indexes/`): every file there — a downloaded
//! index, its decompressed text, its parsed form — is named by a signed digest and re-created on
//! demand, so `himg store gc` drops the ones no lock has read for [`KEEP_UNUSED`], and the
//! half-written files of a killed process.
//!
//! A suite moves to a new index with every archive update (Debian's main index is about 10 MB
//! compressed, 50 MB of text and 13 MB parsed): without pruning a daily schedule would keep
//! gigabytes of indexes no lock can name any more. Reading a cached file marks it used (its
//! modification time, best effort), so the indexes the current locks resolve against stay.

use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::digest_cache::Collected;

/// The directory of the index cache below a store root.
pub const DIR: &str = "indexes";

/// How long an index file no lock read is kept.
pub const KEEP_UNUSED: Duration = Duration::from_secs(14 * 24 * 3600);

/// How old a half-written (`.part`) file must be before it counts as a killed writer's.
const PART_GRACE: Duration = Duration::from_secs(3600);

/// Marks the cached index file at `path` as used now (best effort: a read-only store only keeps
/// it for less long).
pub fn touch(path: &Path) {
    if let Ok(file) = std::fs::File::options().append(true).open(path) {
        let _ = file.set_modified(SystemTime::now());
    }
}

/// Drops (or, when `dry_run`, counts) the files of the index cache `dir` unused for
/// [`KEEP_UNUSED`] before `now`, and the half-written ones older than an hour.
pub fn prune(dir: &Path, now: SystemTime, dry_run: bool) -> std::io::Result<Collected> {
    let mut collected = Collected::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(collected),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        // Never follows a link: only regular files of the cache are candidates.
        let meta = entry.metadata()?;
        if !meta.is_file() {
            continue;
        }
        let name = entry.file_name();
        let part = name.to_str().is_some_and(|n| n.ends_with(".part"));
        let keep = if part { PART_GRACE } else { KEEP_UNUSED };
        let age = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .unwrap_or_default();
        if age <= keep {
            continue;
        }
        if !dry_run {
            std::fs::remove_file(entry.path())?;
        }
        collected.entries += 1;
        collected.bytes += meta.len();
    }
    Ok(collected)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aged(dir: &Path, name: &str, age: Duration) {
        let path = dir.join(name);
        std::fs::write(&path, b"index").expect("write");
        let file = std::fs::File::options()
            .append(true)
            .open(&path)
            .expect("open");
        file.set_modified(SystemTime::now() - age).expect("mtime");
    }

    #[test]
    fn unused_indexes_and_stale_parts_go_recent_ones_stay() {
        let dir = tempfile::tempdir().expect("tempdir");
        let day = Duration::from_secs(24 * 3600);
        aged(dir.path(), "old.parsed", 20 * day);
        aged(dir.path(), "old.plain", 15 * day);
        aged(dir.path(), "fresh.parsed", 2 * day);
        aged(dir.path(), ".parsed-x.part", 2 * PART_GRACE);
        aged(dir.path(), ".parsed-y.part", Duration::from_secs(60));
        std::fs::create_dir(dir.path().join("sub")).expect("dir");
        let now = SystemTime::now();

        let counted = prune(dir.path(), now, true).expect("dry run");
        assert_eq!((counted.entries, counted.bytes), (3, 15));
        assert!(
            dir.path().join("old.parsed").exists(),
            "a dry run removes nothing"
        );

        // A lock read the old parsed index again: it stays.
        touch(&dir.path().join("old.parsed"));
        let dropped = prune(dir.path(), now, false).expect("prune");
        assert_eq!(dropped.entries, 2);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .expect("read")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [".parsed-y.part", "fresh.parsed", "old.parsed", "sub"]
        );
    }
}
