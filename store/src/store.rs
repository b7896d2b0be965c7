//! [`Store`]: the on-disk layout, objects, and the metadata API.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::db::{Pool, PooledConn};
use crate::error::{IoContext, RowError, StoreError};
use crate::id::{B3Digest, ObjectRef, OutputPath, Sha256Digest};
use crate::objects::{BlobWriter, OciBlobWriter, TempFile, b3_of, hash_file};
use crate::tree::{Node, Tree};

/// Name of the layout directory inside the store root; bumped when the layout changes.
pub const LAYOUT_DIR: &str = "v1";

/// A content-addressed store on the local disk.
///
/// # Layout
///
/// ```text
/// <root>/                      Store::root(); chosen by Store::default_root() or the caller
/// └── v1/                      layout version (a future layout lives beside it, in v2/)
///     ├── db.sqlite            metadata (WAL mode: also db.sqlite-wal, db.sqlite-shm)
///     ├── blobs/b3/<2 hex>/<62 hex>    file contents, named by BLAKE3, read-only (0444)
///     ├── trees/b3/<2 hex>/<62 hex>    canonical tree encodings (see Tree), named by BLAKE3
///     ├── oci/sha256/<64 hex>          OCI blobs, named by SHA-256; flat, so that they can be
///     │                                hard-linked into an OCI layout's blobs/sha256/
///     ├── tmp/                 objects being written; stale ones are removed by gc()
///     ├── locks/<64 hex>.lock  one flock per derivation being built (lock_derivation)
///     └── gc.lock              shared by builds (build_guard), exclusive for gc()
/// ```
///
/// # Invariants
///
/// - An object file has its final name only when it is complete (temp file + rename), and
///   its bytes hash to its name.
/// - A metadata row is committed only after the objects it references exist and have been
///   synced to disk (`sync()`), so after a crash every row points at durable objects.
/// - A tree is stored only when all its children are; gc deletes parents before children.
///
/// One `Store` is `Send + Sync`; share it between threads by reference or `Arc`. Any number of
/// processes may open the same root at once.
pub struct Store {
    root: PathBuf,
    dir: PathBuf,
    /// The layout directory, kept open for `syncfs`.
    dir_handle: File,
    pool: Pool,
    /// Set after an object file was renamed into place (or a young one reused) and not synced.
    pub(crate) dirty: AtomicBool,
    sync_lock: Mutex<()>,
    /// Wall-clock time (ns since the epoch) at which the last successful `syncfs` started:
    /// every file changed before it is durable.
    pub(crate) synced_from: AtomicI64,
    pub(crate) tmp_seq: AtomicU64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("root", &self.root).finish()
    }
}

/// A registered output: the result of building a derivation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputRecord {
    /// The output's name in the store.
    pub path: OutputPath,
    /// Its content: usually a tree, or one blob or OCI blob.
    pub content: ObjectRef,
    /// Its size in bytes, as the composer counts it.
    pub size: u64,
    /// Composer-defined metadata, stored as canonical JSON (keys sorted).
    pub meta: serde_json::Value,
    /// Outputs that must be kept with this one (e.g. its inputs' outputs).
    pub refs_outputs: Vec<OutputPath>,
    /// Further objects that must be kept with this one.
    pub refs_objects: Vec<ObjectRef>,
}

/// A cached layer: a tree packed as a tar, compressed with given settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    /// The tree that was packed.
    pub tree: B3Digest,
    /// The compression settings, e.g. `gzip-6` or a media type with parameters
    /// (composer-defined; 1–1024 bytes, no control characters).
    pub compression: String,
    /// SHA-256 of the uncompressed tar.
    pub diff_id: Sha256Digest,
    /// SHA-256 of the compressed blob, an OCI blob in the store.
    pub digest: Sha256Digest,
    /// Size of the compressed blob.
    pub size: u64,
}

/// A GC root: a name that keeps some outputs (and their closure) alive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootRecord {
    /// The root's name.
    pub name: String,
    /// When it was last set, in seconds since the Unix epoch.
    pub created: i64,
    /// The outputs it keeps, sorted.
    pub outputs: Vec<OutputPath>,
}

/// Holds a shared lock that keeps `gc` from running; see [`Store::build_guard`].
#[derive(Debug)]
pub struct BuildGuard {
    _file: File,
}

/// Holds the exclusive lock on one derivation; see [`Store::lock_derivation`].
#[derive(Debug)]
pub struct DerivationLock {
    _file: File,
    key: B3Digest,
}

impl DerivationLock {
    /// The derivation this lock is for.
    pub fn key(&self) -> &B3Digest {
        &self.key
    }
}

pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

pub(crate) fn unix_now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Serialises JSON with object keys sorted and no whitespace, whatever serde_json's
/// `preserve_order` feature says, so equal values are stored as equal text.
pub fn canonical_json(value: &serde_json::Value) -> String {
    fn write(v: &serde_json::Value, out: &mut String) {
        match v {
            serde_json::Value::Object(map) => {
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                out.push('{');
                for (i, (k, v)) in entries.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::Value::String(k.clone()).to_string());
                    out.push(':');
                    write(v, out);
                }
                out.push('}');
            }
            serde_json::Value::Array(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(v, out);
                }
                out.push(']');
            }
            scalar => out.push_str(&scalar.to_string()),
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    out
}

pub(crate) fn to_i64(v: u64, what: &'static str) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::InvalidArgument {
        kind: what,
        value: v.to_string(),
        reason: "larger than 2^63-1",
    })
}

pub(crate) fn to_u64(v: i64, table: &'static str, key: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::CorruptRow {
        table,
        key: key.to_owned(),
        source: RowError::Range(v),
    })
}

pub(crate) fn parse_col<T>(text: &str, table: &'static str, key: &str) -> Result<T, StoreError>
where
    T: crate::id::ParseId,
{
    T::parse_id(text).map_err(|e| StoreError::CorruptRow {
        table,
        key: key.to_owned(),
        source: RowError::Id(e),
    })
}

fn validate_root_name(name: &str) -> Result<(), StoreError> {
    let reason = if name.is_empty() {
        Some("empty")
    } else if name.len() > 4096 {
        Some("longer than 4096 bytes")
    } else if name.chars().any(char::is_control) {
        Some("contains control characters")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(StoreError::InvalidArgument {
            kind: "root name",
            value: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

fn validate_compression(c: &str) -> Result<(), StoreError> {
    if !c.is_empty() && c.len() <= 1024 && !c.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(StoreError::InvalidArgument {
            kind: "layer compression",
            value: c.to_owned(),
            reason: "must be 1-1024 bytes without control characters",
        })
    }
}

/// The metadata fields the stat cache compares, as stored.
fn stat_key(meta: &fs::Metadata) -> (i64, i64, i64, i64, i64) {
    let ns = |s: i64, n: i64| s.saturating_mul(1_000_000_000).saturating_add(n);
    (
        i64::try_from(meta.size()).unwrap_or(i64::MAX),
        ns(meta.mtime(), meta.mtime_nsec()),
        ns(meta.ctime(), meta.ctime_nsec()),
        // Bit-for-bit: inode and device numbers may use all 64 bits.
        meta.ino() as i64,
        meta.dev() as i64,
    )
}

/// Files whose mtime or ctime is this close to now are not put in the stat cache.
pub const RACY_WINDOW_NS: i64 = 2_000_000_000;

impl Store {
    /// Opens (creating on first use) the store at `root`.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        let dir = root.join(LAYOUT_DIR);
        for sub in ["blobs/b3", "trees/b3", "oci/sha256", "tmp", "locks"] {
            let p = dir.join(sub);
            fs::create_dir_all(&p).at(&p)?;
        }
        let dir_handle = File::open(&dir).at(&dir)?;
        let pool = Pool::open(&dir.join("db.sqlite"))?;
        Ok(Store {
            root: root.to_owned(),
            dir,
            dir_handle,
            pool,
            dirty: AtomicBool::new(false),
            sync_lock: Mutex::new(()),
            synced_from: AtomicI64::new(0),
            tmp_seq: AtomicU64::new(0),
        })
    }

    /// Where the store lives by default: `$HIMG_STORE` if set, else `$XDG_DATA_HOME/himg`
    /// (if absolute), else `$HOME/.local/share/himg`.
    pub fn default_root() -> Result<PathBuf, StoreError> {
        Self::default_root_from(|k| std::env::var_os(k))
    }

    /// [`Store::default_root`] with the environment given as a function (for tests).
    pub fn default_root_from(
        env: impl Fn(&str) -> Option<OsString>,
    ) -> Result<PathBuf, StoreError> {
        let non_empty = |k: &str| env(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        if let Some(p) = non_empty("HIMG_STORE") {
            return Ok(p);
        }
        // The XDG spec says relative values are invalid and must be ignored.
        if let Some(p) = non_empty("XDG_DATA_HOME").filter(|p| p.is_absolute()) {
            return Ok(p.join("himg"));
        }
        if let Some(home) = non_empty("HOME") {
            return Ok(home.join(".local/share/himg"));
        }
        Err(StoreError::NoDefaultRoot)
    }

    /// The root directory given to [`Store::open`].
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The versioned layout directory, `<root>/v1`.
    pub fn layout_dir(&self) -> &Path {
        &self.dir
    }

    /// The metadata database file.
    pub fn db_path(&self) -> &Path {
        self.pool.path()
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.dir.join("tmp")
    }

    pub(crate) fn locks_dir(&self) -> PathBuf {
        self.dir.join("locks")
    }

    pub(crate) fn conn(&self) -> Result<PooledConn<'_>, StoreError> {
        self.pool.get()
    }

    fn fanout(&self, kind: &str, d: &B3Digest) -> PathBuf {
        let hex = d.to_hex();
        let mut p = self.dir.join(kind);
        p.push("b3");
        p.push(&hex[..2]);
        p.push(&hex[2..]);
        p
    }

    // ---------------------------------------------------------------- blobs

    /// Where blob `d` is (or would be) stored. The file is read-only; hard-link or mmap it,
    /// never write to it.
    pub fn blob_path(&self, d: &B3Digest) -> PathBuf {
        self.fanout("blobs", d)
    }

    /// Whether blob `d` is in the store.
    pub fn has_blob(&self, d: &B3Digest) -> bool {
        self.blob_path(d).exists()
    }

    /// Stores `data` as a blob (skipping the write if it is already there).
    pub fn put_blob(&self, data: &[u8]) -> Result<B3Digest, StoreError> {
        let d = b3_of(data);
        let dest = self.blob_path(&d);
        if self.exists_noting(&dest) {
            return Ok(d);
        }
        let mut temp = TempFile::create(self, "blob")?;
        temp.write_all(data)?;
        temp.persist(self, &dest)?;
        Ok(d)
    }

    /// Copies the file at `src` into the store as a blob; returns its digest and size.
    ///
    /// The file is hashed first (memory-mapped, in parallel) and not copied at all if the
    /// blob exists. Otherwise it is copied (with `copy_file_range`, which reflinks where the
    /// filesystem can) and the *copy* is hashed again, so the digest always names the bytes
    /// stored even if `src` changes meanwhile.
    pub fn put_blob_from_path(&self, src: &Path) -> Result<(B3Digest, u64), StoreError> {
        let (d, size) = hash_file(src).at(src)?;
        if self.exists_noting(&self.blob_path(&d)) {
            return Ok((d, size));
        }
        let mut from = File::open(src).at(src)?;
        let temp = TempFile::create(self, "blob")?;
        io::copy(&mut from, &mut temp.file()).at(temp.path())?;
        let (d, size) = hash_file(temp.path()).at(temp.path())?;
        temp.persist(self, &self.blob_path(&d))?;
        Ok((d, size))
    }

    /// A writer that streams a new blob into the store.
    pub fn blob_writer(&self) -> Result<BlobWriter<'_>, StoreError> {
        BlobWriter::new(self)
    }

    /// Opens blob `d` for reading.
    pub fn open_blob(&self, d: &B3Digest) -> Result<File, StoreError> {
        open_object(&self.blob_path(d), ObjectRef::Blob(*d))
    }

    /// Reads blob `d` whole, checking its digest.
    pub fn read_blob(&self, d: &B3Digest) -> Result<Vec<u8>, StoreError> {
        let data = read_object(&self.blob_path(d), ObjectRef::Blob(*d))?;
        let actual = b3_of(&data);
        if actual != *d {
            return Err(StoreError::Corrupt {
                object: ObjectRef::Blob(*d),
                expected: d.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(data)
    }

    // ---------------------------------------------------------------- trees

    /// Where tree `d` is (or would be) stored.
    pub fn tree_path(&self, d: &B3Digest) -> PathBuf {
        self.fanout("trees", d)
    }

    /// Whether tree `d` is in the store.
    pub fn has_tree(&self, d: &B3Digest) -> bool {
        self.tree_path(d).exists()
    }

    /// Validates and stores a tree. Every blob and subtree it names must be in the store
    /// already ([`StoreError::MissingObject`] otherwise), and every file's size must be its
    /// blob's ([`StoreError::SizeMismatch`] otherwise). Waits while a gc runs.
    pub fn put_tree(&self, tree: &Tree) -> Result<B3Digest, StoreError> {
        let bytes = tree.encode().map_err(|source| StoreError::InvalidTree {
            object: None,
            source,
        })?;
        // Keeps gc from deleting a child between the check below and the rename, which would
        // leave a tree with a missing child even if the caller holds no guard.
        let _guard = self.build_guard()?;
        for e in &tree.entries {
            match &e.node {
                Node::File { blob, size, .. } => {
                    let Ok(meta) = fs::symlink_metadata(self.blob_path(blob)) else {
                        return Err(StoreError::MissingObject(ObjectRef::Blob(*blob)));
                    };
                    self.note_existing(&meta);
                    // A tree whose sizes lie would make every layer built from it fail.
                    if meta.len() != *size {
                        return Err(StoreError::SizeMismatch {
                            tree_entry: e.name.clone(),
                            blob: *blob,
                            declared: *size,
                            actual: meta.len(),
                        });
                    }
                }
                Node::Dir { tree } if !self.exists_noting(&self.tree_path(tree)) => {
                    return Err(StoreError::MissingObject(ObjectRef::Tree(*tree)));
                }
                _ => {}
            }
        }
        let d = B3Digest::of(&bytes);
        let dest = self.tree_path(&d);
        if self.exists_noting(&dest) {
            return Ok(d);
        }
        let mut temp = TempFile::create(self, "tree")?;
        temp.write_all(&bytes)?;
        temp.persist(self, &dest)?;
        Ok(d)
    }

    /// Reads tree `d`, checking its digest and decoding it.
    pub fn get_tree(&self, d: &B3Digest) -> Result<Tree, StoreError> {
        let bytes = read_object(&self.tree_path(d), ObjectRef::Tree(*d))?;
        let actual = B3Digest::of(&bytes);
        if actual != *d {
            return Err(StoreError::Corrupt {
                object: ObjectRef::Tree(*d),
                expected: d.to_string(),
                actual: actual.to_string(),
            });
        }
        Tree::decode(&bytes).map_err(|source| StoreError::InvalidTree {
            object: Some(*d),
            source,
        })
    }

    // ---------------------------------------------------------------- OCI blobs

    /// The directory of OCI blobs (`oci`, holding `sha256/<hex>`).
    pub fn oci_dir(&self) -> PathBuf {
        self.dir.join("oci")
    }

    /// Where OCI blob `d` is (or would be) stored: `oci/sha256/<hex>`.
    pub fn oci_blob_path(&self, d: &Sha256Digest) -> PathBuf {
        let mut p = self.dir.join("oci/sha256");
        p.push(d.to_hex());
        p
    }

    /// Whether OCI blob `d` is in the store.
    pub fn has_oci_blob(&self, d: &Sha256Digest) -> bool {
        self.oci_blob_path(d).exists()
    }

    /// Stores `data` as an OCI blob.
    pub fn put_oci_blob(&self, data: &[u8]) -> Result<Sha256Digest, StoreError> {
        let d = Sha256Digest::of(data);
        let dest = self.oci_blob_path(&d);
        if self.exists_noting(&dest) {
            return Ok(d);
        }
        let mut temp = TempFile::create(self, "oci")?;
        temp.write_all(data)?;
        temp.persist(self, &dest)?;
        Ok(d)
    }

    /// A writer that streams a new OCI blob into the store.
    pub fn oci_blob_writer(&self) -> Result<OciBlobWriter<'_>, StoreError> {
        OciBlobWriter::new(self)
    }

    /// Opens OCI blob `d` for reading.
    pub fn open_oci_blob(&self, d: &Sha256Digest) -> Result<File, StoreError> {
        open_object(&self.oci_blob_path(d), ObjectRef::Oci(*d))
    }

    // ---------------------------------------------------------------- any object

    /// The file of any object.
    pub fn object_path(&self, r: &ObjectRef) -> PathBuf {
        match r {
            ObjectRef::Blob(d) => self.blob_path(d),
            ObjectRef::Tree(d) => self.tree_path(d),
            ObjectRef::Oci(d) => self.oci_blob_path(d),
        }
    }

    /// Whether any object is in the store.
    pub fn has_object(&self, r: &ObjectRef) -> bool {
        self.object_path(r).exists()
    }

    // ---------------------------------------------------------------- durability and locks

    /// Makes every object written through this `Store` so far durable (`syncfs` on the
    /// store's filesystem). Does nothing if nothing was written since the last sync. Call it
    /// before publishing anything that points at new objects; `register_*` call it themselves.
    pub fn sync(&self) -> Result<(), StoreError> {
        // Serialised: a thread that finds the flag clear must not return while another
        // thread's syncfs, which covers its writes, is still running.
        let _g = self
            .sync_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if self.dirty.swap(false, Ordering::AcqRel) {
            let started = unix_now_ns();
            if let Err(e) = rustix::fs::syncfs(&self.dir_handle) {
                self.dirty.store(true, Ordering::Release);
                return Err(StoreError::io(&self.dir, e.into()));
            }
            self.synced_from.fetch_max(started, Ordering::AcqRel);
        }
        Ok(())
    }

    fn gc_lock_file(&self) -> Result<File, StoreError> {
        let p = self.dir.join("gc.lock");
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(&p)
            .at(&p)
    }

    /// Takes the store-wide lock shared: while any `BuildGuard` is held (in any process),
    /// `gc` waits. Hold one for the whole of a build, from the first object written to the
    /// last row registered, so gc cannot delete objects the build has written but not yet
    /// registered. Blocks while a gc runs. Guards are independent `flock`s: any number of
    /// threads and processes can hold one at once, but a thread that holds one must not call
    /// [`Store::gc`] or [`Store::repair`] (they would wait for it forever).
    pub fn build_guard(&self) -> Result<BuildGuard, StoreError> {
        let file = self.gc_lock_file()?;
        file.lock_shared().at(&self.dir.join("gc.lock"))?;
        Ok(BuildGuard { _file: file })
    }

    /// Runs `f` while no build holds a [`BuildGuard`] (the store-wide lock taken exclusively): for
    /// sweeping what builds keep beside the store (their scratch directories), which only a
    /// running build may be using. Must not be called while this thread holds a guard.
    pub fn with_exclusive<T>(&self, f: impl FnOnce() -> T) -> Result<T, StoreError> {
        let _guard = self.exclusive_guard()?;
        Ok(f())
    }

    /// Takes the store-wide lock exclusively (gc, repair).
    pub(crate) fn exclusive_guard(&self) -> Result<BuildGuard, StoreError> {
        let file = self.gc_lock_file()?;
        file.lock().at(&self.dir.join("gc.lock"))?;
        Ok(BuildGuard { _file: file })
    }

    pub(crate) fn lock_path(&self, key: &B3Digest) -> PathBuf {
        self.locks_dir().join(format!("{}.lock", key.to_hex()))
    }

    /// Locks derivation `key` exclusively, waiting for any other holder (thread or process).
    /// Released when the lock is dropped or the process dies. Use it to build a derivation
    /// once: lookup, lock, lookup again, build, register, drop.
    pub fn lock_derivation(&self, key: &B3Digest) -> Result<DerivationLock, StoreError> {
        loop {
            // Blocking: returns `Some` the first time.
            if let Some(lock) = self.lock_derivation_inner(key, true)? {
                return Ok(lock);
            }
        }
    }

    /// Like [`Store::lock_derivation`] but returns `None` instead of waiting.
    pub fn try_lock_derivation(
        &self,
        key: &B3Digest,
    ) -> Result<Option<DerivationLock>, StoreError> {
        self.lock_derivation_inner(key, false)
    }

    fn lock_derivation_inner(
        &self,
        key: &B3Digest,
        block: bool,
    ) -> Result<Option<DerivationLock>, StoreError> {
        let path = self.lock_path(key);
        loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o644)
                .open(&path)
                .at(&path)?;
            if block {
                file.lock().at(&path)?;
            } else {
                match file.try_lock() {
                    Ok(()) => {}
                    Err(fs::TryLockError::WouldBlock) => return Ok(None),
                    Err(fs::TryLockError::Error(e)) => return Err(StoreError::io(&path, e)),
                }
            }
            // gc deletes unlocked lock files; if it deleted ours between open and lock, we hold
            // a lock on an orphan inode that others cannot see: try again.
            let held = file.metadata().at(&path)?;
            match fs::metadata(&path) {
                Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => {
                    return Ok(Some(DerivationLock {
                        _file: file,
                        key: *key,
                    }));
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io(&path, e)),
            }
        }
    }

    // ---------------------------------------------------------------- outputs

    /// The output that derivation `key` produced, or `None` if it was never built or if its
    /// content, referenced objects or referenced outputs' contents are missing (so it must be
    /// built again). Reference lists come back sorted.
    pub fn lookup_derivation(&self, key: &B3Digest) -> Result<Option<OutputRecord>, StoreError> {
        let conn = self.conn()?;
        let path: Option<String> = conn
            .prepare_cached("SELECT output FROM derivations WHERE key = ?1")?
            .query_row([key.to_string()], |r| r.get(0))
            .optional()?;
        match path {
            None => Ok(None),
            Some(p) => {
                let path: OutputPath = parse_col(&p, "derivations", &key.to_string())?;
                self.lookup_output_with(&conn, &path)
            }
        }
    }

    /// The record of output `path`, or `None` if it is not registered or incomplete (as for
    /// [`Store::lookup_derivation`]).
    pub fn lookup_output(&self, path: &OutputPath) -> Result<Option<OutputRecord>, StoreError> {
        let conn = self.conn()?;
        self.lookup_output_with(&conn, path)
    }

    fn lookup_output_with(
        &self,
        conn: &PooledConn<'_>,
        path: &OutputPath,
    ) -> Result<Option<OutputRecord>, StoreError> {
        let Some(rec) = read_output(conn, path)? else {
            return Ok(None);
        };
        // An output whose content is an OCI blob (a layer, config, manifest) is used through OCI
        // blobs only: the blake3 blobs and trees it also references are the inputs it was built
        // from, kept alive for GC, not parts of it — so only its OCI references are checked (a
        // no-op build looks up every layer, each referencing every file it holds).
        let oci_content = matches!(rec.content, ObjectRef::Oci(_));
        let needed = |r: &&ObjectRef| !oci_content || matches!(r, ObjectRef::Oci(_));
        if !self.has_object(&rec.content)
            || !rec
                .refs_objects
                .iter()
                .filter(needed)
                .all(|r| self.has_object(r))
        {
            return Ok(None);
        }
        for dep in &rec.refs_outputs {
            let content: Option<String> = conn
                .prepare_cached("SELECT content FROM outputs WHERE path = ?1")?
                .query_row([dep.as_str()], |r| r.get(0))
                .optional()?;
            let Some(content) = content else {
                return Ok(None);
            };
            let content: ObjectRef = parse_col(&content, "outputs", dep.as_str())?;
            if !self.has_object(&content) {
                return Ok(None);
            }
        }
        Ok(Some(rec))
    }

    /// The derivation keys registered as producing output `path`, sorted.
    pub fn keys_of_output(&self, path: &OutputPath) -> Result<Vec<B3Digest>, StoreError> {
        let conn = self.conn()?;
        let keys: Vec<String> = conn
            .prepare_cached("SELECT key FROM derivations WHERE output = ?1 ORDER BY key")?
            .query_map([path.as_str()], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        keys.iter()
            .map(|k| parse_col(k, "derivations", path.as_str()))
            .collect()
    }

    /// Registers an output and the derivation keys that produce it.
    ///
    /// Checks that every referenced object is in the store and every referenced output is
    /// registered, syncs the object files, then in one transaction inserts the output, its
    /// references and the key → output rows. Idempotent: registering the same output again
    /// adds any new references and keys. A key that pointed at another output now points at
    /// this one. If `path` is registered with different content whose objects still exist,
    /// fails with [`StoreError::OutputConflict`]; if that older content is gone, it is replaced.
    pub fn register_output(&self, keys: &[B3Digest], rec: &OutputRecord) -> Result<(), StoreError> {
        let _guard = self.build_guard()?;
        for r in std::iter::once(&rec.content).chain(&rec.refs_objects) {
            if !self.exists_noting(&self.object_path(r)) {
                return Err(StoreError::MissingObject(*r));
            }
        }
        let size = to_i64(rec.size, "output size")?;
        let meta = canonical_json(&rec.meta);
        self.sync()?;
        let now = unix_now();
        let mut conn = self.conn()?;
        let tx = conn.write_tx()?;
        for dep in &rec.refs_outputs {
            let exists: bool = tx
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM outputs WHERE path = ?1)")?
                .query_row([dep.as_str()], |r| r.get(0))?;
            if !exists {
                return Err(StoreError::MissingOutput(dep.clone()));
            }
        }
        let existing: Option<String> = tx
            .prepare_cached("SELECT content FROM outputs WHERE path = ?1")?
            .query_row([rec.path.as_str()], |r| r.get(0))
            .optional()?;
        match existing {
            None => {
                tx.prepare_cached(
                    "INSERT INTO outputs (path, content, size, meta, created) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![rec.path.as_str(), rec.content.to_string(), size, meta, now])?;
            }
            Some(old) => {
                let old: ObjectRef = parse_col(&old, "outputs", rec.path.as_str())?;
                if old != rec.content {
                    if self.has_object(&old) {
                        return Err(StoreError::OutputConflict {
                            path: rec.path.clone(),
                            existing: old,
                            new: rec.content,
                        });
                    }
                    tx.prepare_cached(
                        "UPDATE outputs SET content = ?2, size = ?3, meta = ?4, created = ?5 WHERE path = ?1",
                    )?
                    .execute(params![rec.path.as_str(), rec.content.to_string(), size, meta, now])?;
                    tx.prepare_cached("DELETE FROM output_refs WHERE path = ?1")?
                        .execute([rec.path.as_str()])?;
                }
            }
        }
        {
            let mut ins = tx.prepare_cached(
                "INSERT OR IGNORE INTO output_refs (path, ref_kind, ref) VALUES (?1, ?2, ?3)",
            )?;
            for dep in &rec.refs_outputs {
                ins.execute(params![rec.path.as_str(), "output", dep.as_str()])?;
            }
            for obj in &rec.refs_objects {
                ins.execute(params![rec.path.as_str(), "object", obj.to_string()])?;
            }
            let mut ins = tx.prepare_cached(
                "INSERT INTO derivations (key, output) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET output = excluded.output",
            )?;
            for key in keys {
                ins.execute(params![key.to_string(), rec.path.as_str()])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    // ---------------------------------------------------------------- layers

    /// The cached layer for `tree` packed with `compression`, or `None` if there is none or
    /// its OCI blob is gone.
    pub fn lookup_layer(
        &self,
        tree: &B3Digest,
        compression: &str,
    ) -> Result<Option<LayerRecord>, StoreError> {
        let conn = self.conn()?;
        let row: Option<(String, String, i64)> = conn
            .prepare_cached(
                "SELECT diff_id, digest, size FROM layers WHERE tree = ?1 AND compression = ?2",
            )?
            .query_row(params![tree.to_string(), compression], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        let Some((diff_id, digest, size)) = row else {
            return Ok(None);
        };
        let key = format!("{tree} {compression}");
        let rec = LayerRecord {
            tree: *tree,
            compression: compression.to_owned(),
            diff_id: parse_col(&diff_id, "layers", &key)?,
            digest: parse_col(&digest, "layers", &key)?,
            size: to_u64(size, "layers", &key)?,
        };
        if !self.has_oci_blob(&rec.digest) {
            return Ok(None);
        }
        Ok(Some(rec))
    }

    /// Records a layer. Its compressed blob must be in the store; it is synced first.
    /// Replaces any earlier row for the same tree and compression.
    pub fn register_layer(&self, rec: &LayerRecord) -> Result<(), StoreError> {
        validate_compression(&rec.compression)?;
        let size = to_i64(rec.size, "layer size")?;
        let _guard = self.build_guard()?;
        if !self.exists_noting(&self.oci_blob_path(&rec.digest)) {
            return Err(StoreError::MissingObject(ObjectRef::Oci(rec.digest)));
        }
        self.sync()?;
        let mut conn = self.conn()?;
        let tx = conn.write_tx()?;
        tx.prepare_cached(
            "INSERT OR REPLACE INTO layers (tree, compression, diff_id, digest, size)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            rec.tree.to_string(),
            rec.compression,
            rec.diff_id.to_string(),
            rec.digest.to_string(),
            size
        ])?;
        tx.commit()?;
        Ok(())
    }

    // ---------------------------------------------------------------- stat cache

    /// The blob digest recorded for the file at `path` if its metadata (size, mtime, ctime,
    /// inode, device) is unchanged since it was recorded. Paths are compared as given: pass
    /// them in one canonical form (e.g. absolute). Non-UTF-8 paths are never cached.
    pub fn cached_file_hash(
        &self,
        path: &Path,
        meta: &fs::Metadata,
    ) -> Result<Option<B3Digest>, StoreError> {
        Ok(self
            .cached_file_hashes(&[(path, meta)])?
            .into_iter()
            .next()
            .flatten())
    }

    /// [`Store::cached_file_hash`] for many files at once, in one read transaction (a no-op build
    /// looks up thousands of files; one transaction saves SQLite's per-transaction locking).
    pub fn cached_file_hashes(
        &self,
        files: &[(&Path, &fs::Metadata)],
    ) -> Result<Vec<Option<B3Digest>>, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        let mut out = Vec::with_capacity(files.len());
        {
            let mut stmt = tx.prepare_cached(
                "SELECT size, mtime_ns, ctime_ns, ino, dev, blob FROM file_hashes WHERE path = ?1",
            )?;
            for (path, meta) in files {
                let Some(p) = path.to_str() else {
                    out.push(None);
                    continue;
                };
                let row: Option<(i64, i64, i64, i64, i64, String)> = stmt
                    .query_row([p], |r| {
                        Ok((
                            r.get(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get(5)?,
                        ))
                    })
                    .optional()?;
                out.push(match row {
                    Some((size, mtime, ctime, ino, dev, blob))
                        if (size, mtime, ctime, ino, dev) == stat_key(meta) =>
                    {
                        Some(parse_col(&blob, "file_hashes", p)?)
                    }
                    _ => None,
                });
            }
        }
        tx.commit()?;
        Ok(out)
    }

    /// Records one file's hash in the stat cache; see [`Store::record_file_hashes`].
    pub fn record_file_hash(
        &self,
        path: &Path,
        meta: &fs::Metadata,
        blob: &B3Digest,
    ) -> Result<(), StoreError> {
        self.record_file_hashes(&[(path.to_owned(), meta.clone(), *blob)])
    }

    /// Records file hashes in the stat cache, in one transaction.
    ///
    /// `meta` must be the metadata taken *before* the file was hashed. Entries whose mtime or
    /// ctime is less than 2 s before now (or in the future) are not cached, because of racy
    /// timestamps: timestamps have a granularity (a kernel tick of a few ms on Linux, 1 s
    /// on some filesystems, 2 s on FAT), so a file written again within the same tick after
    /// we hashed it can keep the same size, mtime and ctime while its contents differ, and the
    /// cache would then return a stale hash forever. Such a "racily clean" file is simply
    /// hashed again next time, when it is old enough to cache (git's index has the same rule).
    pub fn record_file_hashes(
        &self,
        entries: &[(PathBuf, fs::Metadata, B3Digest)],
    ) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let now = unix_now_ns();
        let mut conn = self.conn()?;
        let tx = conn.write_tx()?;
        {
            let mut ins = tx.prepare_cached(
                "INSERT OR REPLACE INTO file_hashes (path, size, mtime_ns, ctime_ns, ino, dev, blob)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            let mut del = tx.prepare_cached("DELETE FROM file_hashes WHERE path = ?1")?;
            for (path, meta, blob) in entries {
                let Some(p) = path.to_str() else { continue };
                let (size, mtime, ctime, ino, dev) = stat_key(meta);
                if mtime.max(ctime) > now.saturating_sub(RACY_WINDOW_NS) {
                    del.execute([p])?;
                    continue;
                }
                ins.execute(params![p, size, mtime, ctime, ino, dev, blob.to_string()])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    // ---------------------------------------------------------------- roots

    /// Sets root `name` to keep exactly `outputs` (replacing what it kept before). Every
    /// output must be registered.
    pub fn set_root(&self, name: &str, outputs: &[OutputPath]) -> Result<(), StoreError> {
        validate_root_name(name)?;
        let _guard = self.build_guard()?;
        let mut conn = self.conn()?;
        let tx = conn.write_tx()?;
        for o in outputs {
            let exists: bool = tx
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM outputs WHERE path = ?1)")?
                .query_row([o.as_str()], |r| r.get(0))?;
            if !exists {
                return Err(StoreError::MissingOutput(o.clone()));
            }
        }
        tx.execute(
            "INSERT INTO roots (name, created) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET created = excluded.created",
            params![name, unix_now()],
        )?;
        tx.execute("DELETE FROM root_outputs WHERE name = ?1", [name])?;
        {
            let mut ins = tx.prepare_cached(
                "INSERT OR IGNORE INTO root_outputs (name, path) VALUES (?1, ?2)",
            )?;
            for o in outputs {
                ins.execute(params![name, o.as_str()])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Removes root `name`; returns whether it existed.
    pub fn remove_root(&self, name: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.write_tx()?;
        let n = tx.execute("DELETE FROM roots WHERE name = ?1", [name])?;
        tx.commit()?;
        Ok(n > 0)
    }

    /// All roots, sorted by name.
    pub fn roots(&self) -> Result<Vec<RootRecord>, StoreError> {
        let conn = self.conn()?;
        read_roots(&conn)
    }
}

pub(crate) fn read_roots(conn: &rusqlite::Connection) -> Result<Vec<RootRecord>, StoreError> {
    let mut roots: Vec<RootRecord> = conn
        .prepare("SELECT name, created FROM roots ORDER BY name")?
        .query_map([], |r| {
            Ok(RootRecord {
                name: r.get(0)?,
                created: r.get(1)?,
                outputs: Vec::new(),
            })
        })?
        .collect::<Result<_, _>>()?;
    let mut stmt = conn.prepare("SELECT path FROM root_outputs WHERE name = ?1 ORDER BY path")?;
    for root in &mut roots {
        let paths: Vec<String> = stmt
            .query_map([&root.name], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for p in paths {
            root.outputs
                .push(parse_col(&p, "root_outputs", &root.name)?);
        }
    }
    Ok(roots)
}

/// Reads an output row and its references, without checking objects.
pub(crate) fn read_output(
    conn: &rusqlite::Connection,
    path: &OutputPath,
) -> Result<Option<OutputRecord>, StoreError> {
    let row: Option<(String, i64, String)> = conn
        .prepare_cached("SELECT content, size, meta FROM outputs WHERE path = ?1")?
        .query_row([path.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((content, size, meta)) = row else {
        return Ok(None);
    };
    let key = path.as_str();
    let content: ObjectRef = parse_col(&content, "outputs", key)?;
    let size = to_u64(size, "outputs", key)?;
    let meta: serde_json::Value =
        serde_json::from_str(&meta).map_err(|e| StoreError::CorruptRow {
            table: "outputs",
            key: key.to_owned(),
            source: RowError::Json(e),
        })?;
    let mut refs_outputs = BTreeSet::new();
    let mut refs_objects = BTreeSet::new();
    let refs: Vec<(String, String)> = conn
        .prepare_cached("SELECT ref_kind, ref FROM output_refs WHERE path = ?1")?
        .query_map([key], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (kind, r) in refs {
        if kind == "output" {
            refs_outputs.insert(parse_col::<OutputPath>(&r, "output_refs", key)?);
        } else {
            refs_objects.insert(parse_col::<ObjectRef>(&r, "output_refs", key)?);
        }
    }
    Ok(Some(OutputRecord {
        path: path.clone(),
        content,
        size,
        meta,
        refs_outputs: refs_outputs.into_iter().collect(),
        refs_objects: refs_objects.into_iter().collect(),
    }))
}

fn open_object(path: &Path, obj: ObjectRef) -> Result<File, StoreError> {
    match File::open(path) {
        Ok(f) => Ok(f),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StoreError::MissingObject(obj)),
        Err(e) => Err(StoreError::io(path, e)),
    }
}

fn read_object(path: &Path, obj: ObjectRef) -> Result<Vec<u8>, StoreError> {
    let mut f = open_object(path, obj)?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).at(path)?;
    Ok(buf)
}
