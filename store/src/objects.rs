//! Object files: temp files, streaming writers, and publishing by rename.
//!
//! Every object is written to a fresh file in `<root>/v1/tmp/`, hashed while it is written,
//! made read-only, and renamed to its content-addressed name. A rename is atomic, so an
//! object's final name only ever shows complete bytes; a process killed half-way leaves a
//! temp file that nothing reads and `gc` removes. Each temp file is `flock`ed by its writer
//! for its whole life, which is how `gc` and `verify` tell a live writer's file from a dead
//! one's: the kernel drops the lock when the process dies.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::Digest as _;

use crate::error::{IoContext, StoreError};
use crate::id::{B3Digest, Sha256Digest};
use crate::store::Store;

/// Size of the buffer between a writer and its temp file.
const WRITE_BUFFER: usize = 256 * 1024;
/// Inputs at least this large are hashed with rayon (BLAKE3 gains from it above ~128 KiB).
pub(crate) const RAYON_THRESHOLD: usize = 128 * 1024;
/// An existing object younger than this may still be only in the page cache of the process
/// that wrote it: reusing it marks this store dirty so the next `sync()` really syncs.
const YOUNG_OBJECT_SECS: i64 = 60;
/// Slack between file timestamps (coarse kernel clock) and `SystemTime::now()`.
const CLOCK_MARGIN_NS: i64 = 50_000_000;

/// A file in `tmp/`, locked by us, removed on drop unless persisted.
pub(crate) struct TempFile {
    path: PathBuf,
    writer: BufWriter<File>,
    persisted: bool,
}

impl TempFile {
    pub(crate) fn create(store: &Store, kind: &str) -> Result<TempFile, StoreError> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let seq = store.tmp_seq.fetch_add(1, Ordering::Relaxed);
        let path = store.tmp_dir().join(format!(
            "{kind}-{}-{seq}-{nanos:09}.tmp",
            std::process::id()
        ));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .at(&path)?;
        // Lock it so gc/verify know a live process owns it. The file is new, so this never blocks.
        file.lock().at(&path)?;
        Ok(TempFile {
            path,
            writer: BufWriter::with_capacity(WRITE_BUFFER, file),
            persisted: false,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn write_all(&mut self, data: &[u8]) -> Result<(), StoreError> {
        self.writer.write_all(data).at(&self.path)
    }

    pub(crate) fn file(&self) -> &File {
        self.writer.get_ref()
    }

    /// Flushes, makes the file read-only and renames it to `dest`, unless `dest` exists
    /// already (same name, same content: keep the old one). Returns whether it was renamed.
    pub(crate) fn persist(mut self, store: &Store, dest: &Path) -> Result<bool, StoreError> {
        self.writer.flush().at(&self.path)?;
        if let Ok(meta) = fs::symlink_metadata(dest) {
            store.note_existing(&meta);
            return Ok(false); // drop removes the temp file
        }
        self.writer
            .get_ref()
            .set_permissions(fs::Permissions::from_mode(0o444))
            .at(&self.path)?;
        match fs::rename(&self.path, dest) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound && !self.path.exists() => {
                return Err(StoreError::io(&self.path, e));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // The fan-out directory does not exist yet.
                let parent = dest.parent().unwrap_or(dest);
                fs::create_dir_all(parent).at(parent)?;
                fs::rename(&self.path, dest).at(dest)?;
            }
            Err(e) => return Err(StoreError::io(dest, e)),
        }
        self.persisted = true;
        // Only after the rename: a sync() that sees the flag then covers this file.
        store.dirty.store(true, Ordering::Release);
        Ok(true)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.persisted {
            let _ = fs::remove_file(&self.path);
        }
    }
}

impl Store {
    /// Marks the store dirty when an object we are about to rely on was written recently,
    /// possibly by another process that has not synced it yet.
    ///
    /// `syncfs` flushes the whole filesystem, whoever wrote to it, so an object last changed
    /// before our last sync started is durable already.
    pub(crate) fn note_existing(&self, meta: &fs::Metadata) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        if now.saturating_sub(meta.ctime()) >= YOUNG_OBJECT_SECS {
            return;
        }
        let ctime_ns = meta
            .ctime()
            .saturating_mul(1_000_000_000)
            .saturating_add(meta.ctime_nsec());
        // Timestamps come from the kernel's coarse clock: allow a margin.
        if ctime_ns.saturating_add(CLOCK_MARGIN_NS) < self.synced_from.load(Ordering::Acquire) {
            return;
        }
        self.dirty.store(true, Ordering::Release);
    }

    /// If `path` exists, notes it (see [`Store::note_existing`]) and returns true.
    pub(crate) fn exists_noting(&self, path: &Path) -> bool {
        match fs::symlink_metadata(path) {
            Ok(meta) => {
                self.note_existing(&meta);
                true
            }
            Err(_) => false,
        }
    }
}

/// Streams a blob into the store, hashing with BLAKE3 as it goes.
///
/// Get one from [`Store::blob_writer`], `write` the contents, then [`BlobWriter::finish`].
/// Dropping it without `finish` discards what was written.
pub struct BlobWriter<'a> {
    store: &'a Store,
    temp: TempFile,
    hasher: blake3::Hasher,
}

impl<'a> BlobWriter<'a> {
    pub(crate) fn new(store: &'a Store) -> Result<Self, StoreError> {
        Ok(BlobWriter {
            store,
            temp: TempFile::create(store, "blob")?,
            hasher: blake3::Hasher::new(),
        })
    }

    /// Publishes the blob and returns its digest and size.
    pub fn finish(self) -> Result<(B3Digest, u64), StoreError> {
        let digest = B3Digest::from(self.hasher.finalize());
        let size = self.hasher.count();
        self.temp
            .persist(self.store, &self.store.blob_path(&digest))?;
        Ok((digest, size))
    }
}

impl Write for BlobWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.temp.writer.write(buf)?;
        if n >= RAYON_THRESHOLD {
            self.hasher.update_rayon(&buf[..n]);
        } else {
            self.hasher.update(&buf[..n]);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.temp.writer.flush()
    }
}

impl std::fmt::Debug for BlobWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobWriter")
            .field("temp", &self.temp.path)
            .field("written", &self.hasher.count())
            .finish()
    }
}

/// Streams an OCI blob (compressed layer, config, manifest, index) into the store, hashing
/// with SHA-256 as it goes. Dropping it without [`OciBlobWriter::finish`] discards it.
pub struct OciBlobWriter<'a> {
    store: &'a Store,
    temp: TempFile,
    hasher: sha2::Sha256,
    size: u64,
}

impl<'a> OciBlobWriter<'a> {
    pub(crate) fn new(store: &'a Store) -> Result<Self, StoreError> {
        Ok(OciBlobWriter {
            store,
            temp: TempFile::create(store, "oci")?,
            hasher: sha2::Sha256::new(),
            size: 0,
        })
    }

    /// Publishes the blob and returns its digest and size.
    pub fn finish(self) -> Result<(Sha256Digest, u64), StoreError> {
        let digest = Sha256Digest::from_bytes(self.hasher.finalize().into());
        self.temp
            .persist(self.store, &self.store.oci_blob_path(&digest))?;
        Ok((digest, self.size))
    }
}

impl Write for OciBlobWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.temp.writer.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.temp.writer.flush()
    }
}

impl std::fmt::Debug for OciBlobWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OciBlobWriter")
            .field("temp", &self.temp.path)
            .field("written", &self.size)
            .finish()
    }
}

/// BLAKE3 of a file's contents and its length.
///
/// Small files are read; files of 128 KiB and more are memory-mapped and hashed on the rayon
/// pool. Do not truncate a file while it is being hashed: a shrinking memory-mapped file
/// raises `SIGBUS`.
pub fn hash_file(path: &Path) -> io::Result<(B3Digest, u64)> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut hasher = blake3::Hasher::new();
    if len >= RAYON_THRESHOLD as u64 {
        drop(file);
        hasher.update_mmap_rayon(path)?;
    } else {
        let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0) + 1);
        io::Read::read_to_end(&mut file, &mut buf)?;
        hasher.update(&buf);
    }
    Ok((B3Digest::from(hasher.finalize()), hasher.count()))
}

/// SHA-256 of a file's contents and its length.
pub fn sha256_file(path: &Path) -> io::Result<(Sha256Digest, u64)> {
    let mut file = File::open(path)?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; WRITE_BUFFER];
    let mut size = 0u64;
    loop {
        let n = match io::Read::read(&mut file, &mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((Sha256Digest::from_bytes(hasher.finalize().into()), size))
}

/// Hashes `data` with BLAKE3, on the rayon pool when it is large.
pub(crate) fn b3_of(data: &[u8]) -> B3Digest {
    if data.len() >= RAYON_THRESHOLD {
        let mut h = blake3::Hasher::new();
        h.update_rayon(data);
        B3Digest::from(h.finalize())
    } else {
        B3Digest::of(data)
    }
}
