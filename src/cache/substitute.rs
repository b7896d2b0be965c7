//! Substitution (fetching outputs from caches instead of building them) and pushing outputs to a
//! cache.
//!
//! What an entry carries: an output whose content is an OCI blob (a layer, a config, a manifest,
//! an index) is self-contained, so its archive holds that blob only — the layer's source files and
//! the blobs a manifest names are other derivations' outputs, with entries of their own. Any other
//! output (a copied tree, a text blob, a `.deb`, a file set) carries its content and every object
//! it references, so the output is usable on its own. A substituted output is registered with
//! those objects as references and no input outputs: it was not built here, so what it was built
//! from is not needed.

use std::collections::BTreeMap;
use std::io::{self, Seek, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use himg_store::{B3Digest, ObjectRef, OutputRecord, Sha256Digest, Store};
use rayon::prelude::*;
use sha2::Digest as _;

use super::backend::Backend;
use super::entry::{ENTRY_VERSION, Entry, SignedEntry};
use super::sign::{SecretKey, TrustedKeys};
use super::{CacheError, archive};

/// The objects an output's archive holds (roots; the archive adds what they reach).
pub fn archive_roots(rec: &OutputRecord) -> Vec<ObjectRef> {
    let mut roots = vec![rec.content];
    if !matches!(rec.content, ObjectRef::Oci(_)) {
        for r in &rec.refs_objects {
            if !roots.contains(r) {
                roots.push(*r);
            }
        }
    }
    roots
}

/// A writer that hashes (SHA-256) and counts what passes through.
struct Hashing<W> {
    inner: W,
    hasher: sha2::Sha256,
    size: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W> Hashing<W> {
    fn new(inner: W) -> Self {
        Hashing {
            inner,
            hasher: sha2::Sha256::new(),
            size: 0,
        }
    }
    fn finish(self) -> (W, Sha256Digest, u64) {
        let d = Sha256Digest::from_bytes(self.hasher.finalize().into());
        (self.inner, d, self.size)
    }
}

/// A writer that takes at most `left` bytes and fails (setting `overflowed`) on the next one, so a
/// cache that sends more than it signed is cut off at the signed size.
struct Bounded<W> {
    inner: W,
    left: u64,
    overflowed: bool,
}

impl<W: Write> Write for Bounded<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.len() as u64 > self.left {
            self.overflowed = true;
            return Err(io::Error::other("longer than the signed size"));
        }
        let n = self.inner.write(buf)?;
        self.left -= n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn temp_file(store: &Store) -> Result<tempfile::NamedTempFile, CacheError> {
    let dir = store.layout_dir().join("tmp");
    tempfile::Builder::new()
        .prefix("cache-")
        .tempfile_in(&dir)
        .map_err(|e| CacheError::io(dir.display(), e))
}

// ------------------------------------------------------------------------------------- substitution

struct Cache {
    backend: Box<dyn Backend>,
    down: AtomicBool,
}

/// The substituters of one build, in priority order, with the keys they must be signed by.
pub struct Substituters<'a> {
    caches: Vec<Cache>,
    trusted: TrustedKeys,
    found: Mutex<BTreeMap<B3Digest, (usize, SignedEntry)>>,
    warn: &'a (dyn Fn(&str) + Sync),
    /// Archive bytes downloaded.
    pub downloaded: AtomicU64,
}

impl std::fmt::Debug for Substituters<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Substituters")
            .field(
                "caches",
                &self
                    .caches
                    .iter()
                    .map(|c| c.backend.url())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl<'a> Substituters<'a> {
    pub fn new(
        backends: Vec<Box<dyn Backend>>,
        trusted: TrustedKeys,
        warn: &'a (dyn Fn(&str) + Sync),
    ) -> Self {
        Substituters {
            caches: backends
                .into_iter()
                .map(|backend| Cache {
                    backend,
                    down: AtomicBool::new(false),
                })
                .collect(),
            trusted,
            found: Mutex::new(BTreeMap::new()),
            warn,
            downloaded: AtomicU64::new(0),
        }
    }

    fn mark_down(&self, i: usize, e: &CacheError) {
        if !self.caches[i].down.swap(true, Ordering::AcqRel) {
            (self.warn)(&format!(
                "cache {} is not usable ({e}); building what it would have provided",
                self.caches[i].backend.url()
            ));
        }
    }

    fn fetch_inner(
        &self,
        store: &Store,
        i: usize,
        signed: &SignedEntry,
    ) -> Result<OutputRecord, CacheError> {
        let e = &signed.entry;
        let backend = &self.caches[i].backend;
        let refused = |reason: String| CacheError::Refused {
            key: e.key.to_string(),
            cache: backend.url().to_owned(),
            reason,
        };
        let _lock = store.lock_derivation(&e.key)?;
        if let Some(rec) = store.lookup_derivation(&e.key)? {
            return Ok(rec);
        }
        let temp = temp_file(store)?;
        let mut w = Hashing::new(Bounded {
            inner: temp.as_file(),
            left: e.file_size,
            overflowed: false,
        });
        let got = backend.get_archive(&e.file_hash, e.file_size, &mut w);
        let (bounded, hash, size) = w.finish();
        self.downloaded.fetch_add(size, Ordering::Relaxed);
        if bounded.overflowed {
            return Err(refused(format!(
                "the archive is longer than the {} bytes its entry declares; cut off there",
                e.file_size
            )));
        }
        got?;
        if hash != e.file_hash || size != e.file_size {
            return Err(refused(format!(
                "the archive does not match its entry: expected {} ({} bytes), got {hash} ({size} bytes)",
                e.file_hash, e.file_size
            )));
        }
        let mut f = temp.as_file();
        f.seek(io::SeekFrom::Start(0))
            .map_err(|err| CacheError::io(temp.path().display(), err))?;
        let got = archive::unpack_bounded(store, &mut f, e.nar_size)
            .map_err(|err| refused(err.to_string()))?;
        for obj in &e.objects {
            if !got.contains(obj) && !store.has_object(obj) {
                return Err(refused(format!(
                    "the archive does not hold {obj}, which the entry names"
                )));
            }
        }
        // What the entry declares, against the bytes written (tree entries' sizes were checked
        // as each tree was stored).
        super::check::check_declared(store, e).map_err(refused)?;
        let rec = OutputRecord {
            path: e.path.clone(),
            content: e.content,
            size: e.size,
            meta: e.meta.clone(),
            refs_outputs: Vec::new(),
            refs_objects: e.objects.clone(),
        };
        store.register_output(&[e.key], &rec)?;
        Ok(rec)
    }
}

impl crate::plan::Substituter for Substituters<'_> {
    fn query(&self, key: &B3Digest) -> bool {
        for (i, cache) in self.caches.iter().enumerate() {
            if cache.down.load(Ordering::Acquire) {
                continue;
            }
            let bytes = match cache.backend.get_entry(key) {
                Ok(Some(b)) => b,
                Ok(None) => continue,
                Err(e) => {
                    self.mark_down(i, &e);
                    continue;
                }
            };
            let checked = SignedEntry::parse(&bytes)
                .map_err(|e| e.to_string())
                .and_then(|s| s.verify(key, &self.trusted).map(|()| s));
            match checked {
                Ok(signed) => {
                    self.found
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(*key, (i, signed));
                    return true;
                }
                Err(reason) => (self.warn)(&format!(
                    "refused entry {key} from {}: {reason}; building it instead",
                    cache.backend.url()
                )),
            }
        }
        false
    }

    fn fetch(&self, store: &Store, key: &B3Digest) -> Option<OutputRecord> {
        let found = self
            .found
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned();
        let (i, signed) = found?;
        match self.fetch_inner(store, i, &signed) {
            Ok(rec) => Some(rec),
            Err(e) => {
                if matches!(e, CacheError::Backend { .. }) {
                    self.mark_down(i, &e);
                } else {
                    (self.warn)(&format!("{e}; building it instead"));
                }
                None
            }
        }
    }
}

// ------------------------------------------------------------------------------------- push

/// What a push did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PushReport {
    /// Entries uploaded.
    pub pushed: u64,
    /// Entries the cache already had.
    pub skipped: u64,
    /// Archive bytes uploaded.
    pub bytes: u64,
}

/// Pushes `outputs` (derivation key → output) to `backend`, signed with `key`; skips the entries
/// the cache has, and archives it has under another key.
pub fn push(
    store: &Store,
    backend: &dyn Backend,
    key: &SecretKey,
    outputs: &BTreeMap<B3Digest, OutputRecord>,
) -> Result<PushReport, CacheError> {
    let pushed = AtomicU64::new(0);
    let skipped = AtomicU64::new(0);
    let bytes = AtomicU64::new(0);
    let items: Vec<_> = outputs.iter().collect();
    items
        .par_iter()
        .map(|(dkey, rec)| -> Result<(), CacheError> {
            if backend.has_entry(dkey)? {
                skipped.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            let roots = archive_roots(rec);
            let temp = temp_file(store)?;
            let mut w = Hashing::new(temp.as_file());
            let stats = archive::pack(store, &roots, &mut w)?;
            let (_, file_hash, file_size) = w.finish();
            if !backend.has_archive(&file_hash)? {
                backend.put_archive(&file_hash, file_size, temp.path())?;
                bytes.fetch_add(file_size, Ordering::Relaxed);
            }
            let entry = Entry {
                version: ENTRY_VERSION,
                key: **dkey,
                path: rec.path.clone(),
                content: rec.content,
                size: rec.size,
                meta: rec.meta.clone(),
                references: rec.refs_outputs.clone(),
                objects: roots,
                format: archive::FORMAT.to_owned(),
                compression: "zstd".to_owned(),
                file_hash,
                file_size,
                nar_size: stats.bytes,
            };
            let signed = entry.sign(key)?;
            backend.put_entry(dkey, &signed.to_bytes()?, (&file_hash, file_size))?;
            pushed.fetch_add(1, Ordering::Relaxed);
            Ok(())
        })
        .collect::<Result<Vec<()>, CacheError>>()?;
    Ok(PushReport {
        pushed: pushed.into_inner(),
        skipped: skipped.into_inner(),
        bytes: bytes.into_inner(),
    })
}
