//! The result cache: a passing test's outcome, keyed by (image manifest digest, canonical hash of the
//! test definition), kept as one small JSON file under `<store root>/tests/<digest hex>/`. Failures
//! are never cached, so a failing test always runs again. `himg store gc` drops the results of
//! images the store no longer holds; deleting the directory only costs re-running tests.

use std::path::Path;

use himg_lang::TestSpec;

use super::Outcome;
use crate::digest_cache::DigestCache;

/// Results of one store.
pub struct ResultCache {
    cache: DigestCache,
}

/// The cache key of `test` (against any image: the digest shards the cache).
pub fn key(test: &TestSpec) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"himg-test-result-v2\0");
    hasher.update(&crate::oci::canonical_json(test).unwrap_or_default());
    hasher.finalize().to_hex().to_string()
}

impl ResultCache {
    /// The cache of the store at `store_root`.
    pub fn new(store_root: &Path) -> ResultCache {
        ResultCache {
            cache: cache(store_root),
        }
    }

    /// A cached passing outcome of `test` on image `digest`; anything unreadable is a miss.
    pub fn get(&self, digest: &str, test: &TestSpec) -> Option<Outcome> {
        let bytes = self.cache.read(digest, &key(test))?;
        serde_json::from_slice::<Outcome>(&bytes)
            .ok()
            .filter(|o| o.passed)
    }

    /// Records a passing outcome. Errors only cost a re-run.
    pub fn put(&self, digest: &str, test: &TestSpec, outcome: &Outcome) {
        if let Ok(bytes) = serde_json::to_vec(outcome) {
            self.cache.write(digest, &key(test), &bytes);
        }
    }
}

/// The directory cache under a store root.
pub fn cache(store_root: &Path) -> DigestCache {
    DigestCache::new(store_root, "tests")
}
