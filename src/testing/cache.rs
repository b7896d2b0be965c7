//! The result cache: a passing test's outcome, keyed by (image manifest digest, canonical hash of the
//! test definition), kept as one small JSON file under `<store root>/tests/`. Failures are never
//! cached, so a failing test always runs again. Outside the store's database: `himg store gc` does not
//! know these files, and deleting the directory only costs re-running tests.

use std::path::{Path, PathBuf};

use himg_lang::TestSpec;

use super::Outcome;

/// Results under one directory.
pub struct ResultCache {
    dir: PathBuf,
}

/// The cache key of `test` against the image with manifest `digest`.
pub fn key(digest: &str, test: &TestSpec) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"himg-test-result-v1\0");
    hasher.update(digest.as_bytes());
    hasher.update(b"\0");
    hasher.update(&crate::oci::canonical_json(test).unwrap_or_default());
    hasher.finalize().to_hex().to_string()
}

impl ResultCache {
    /// The cache of the store at `store_root`.
    pub fn new(store_root: &Path) -> ResultCache {
        ResultCache {
            dir: store_root.join("tests"),
        }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    /// A cached passing outcome; anything unreadable is a miss.
    pub fn get(&self, key: &str) -> Option<Outcome> {
        let bytes = std::fs::read(self.path(key)).ok()?;
        serde_json::from_slice::<Outcome>(&bytes)
            .ok()
            .filter(|o| o.passed)
    }

    /// Records a passing outcome (atomically: temp file, then rename). Errors only cost a re-run.
    pub fn put(&self, key: &str, outcome: &Outcome) {
        let Ok(bytes) = serde_json::to_vec(outcome) else {
            return;
        };
        if std::fs::create_dir_all(&self.dir).is_err() {
            return;
        }
        if let Ok(mut tmp) = tempfile::NamedTempFile::new_in(&self.dir) {
            use std::io::Write;
            if tmp.write_all(&bytes).is_ok() {
                let _ = tmp.persist(self.path(key));
            }
        }
    }
}
