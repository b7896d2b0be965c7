//! Reading objects with their digest checked: a reader that re-hashes a blob as it is read, and
//! [`Store::check_objects`], which re-hashes each object file once per file version.
//!
//! Every byte that leaves the store (into an image layout, an archive, a layer, a cache) goes
//! through one of the two, so a corrupted object is refused instead of shipped.
//!
//! `check_objects` records what it verified in the `checked_objects` table with the file's size,
//! mtime, inode and device: a file that was written to or replaced since has another mtime or
//! inode and is hashed again. The ctime is not part of the key, because hard-linking an object
//! into an OCI layout changes it; a change that keeps size, mtime and inode (a failing disk, or
//! someone resetting the mtime) is found by `himg store verify`, which re-hashes everything.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;

use rayon::prelude::*;
use rusqlite::{OptionalExtension, params};
use sha2::Digest as _;

use crate::error::{IoContext, StoreError};
use crate::id::{B3Digest, ObjectRef, Sha256Digest};
use crate::objects::{hash_file, sha256_file};
use crate::store::{RACY_WINDOW_NS, Store, unix_now_ns};

/// The metadata fields a check is recorded with: size, mtime (ns), inode, device.
fn version_of(meta: &fs::Metadata) -> (i64, i64, i64, i64) {
    (
        i64::try_from(meta.size()).unwrap_or(i64::MAX),
        meta.mtime()
            .saturating_mul(1_000_000_000)
            .saturating_add(meta.mtime_nsec()),
        // Bit-for-bit: inode and device numbers may use all 64 bits.
        meta.ino() as i64,
        meta.dev() as i64,
    )
}

/// The digest part of an object's name.
fn digest_of(obj: &ObjectRef) -> String {
    match obj {
        ObjectRef::Blob(d) | ObjectRef::Tree(d) => d.to_string(),
        ObjectRef::Oci(d) => d.to_string(),
    }
}

/// Re-hashes an object file; `Err(Corrupt)` if its bytes do not hash to its name.
fn rehash(store: &Store, obj: &ObjectRef) -> Result<(), StoreError> {
    let path = store.object_path(obj);
    let actual = match obj {
        ObjectRef::Blob(d) | ObjectRef::Tree(d) => {
            let (got, _) = hash_file(&path).at(&path)?;
            (got != *d).then(|| got.to_string())
        }
        ObjectRef::Oci(d) => {
            let (got, _) = sha256_file(&path).at(&path)?;
            (got != *d).then(|| got.to_string())
        }
    };
    match actual {
        None => Ok(()),
        Some(actual) => Err(StoreError::Corrupt {
            object: *obj,
            expected: digest_of(obj),
            actual,
        }),
    }
}

impl Store {
    /// Checks that every object in `objects` is in the store and hashes to its name, re-hashing
    /// only the files not checked since they last changed (see the module documentation). A
    /// corrupt object is [`StoreError::Corrupt`], a missing one [`StoreError::MissingObject`].
    ///
    /// A no-op build calls this for every blob it writes out: one read transaction, a `stat` per
    /// object, and no hashing once the objects have been checked.
    pub fn check_objects(&self, objects: &[ObjectRef]) -> Result<(), StoreError> {
        let mut unchecked = Vec::new();
        {
            let mut conn = self.conn()?;
            let tx = conn.transaction()?;
            {
                let mut stmt = tx.prepare_cached(
                    "SELECT size, mtime_ns, ino, dev FROM checked_objects WHERE object = ?1",
                )?;
                for obj in objects {
                    let path = self.object_path(obj);
                    let meta = match fs::metadata(&path) {
                        Ok(m) => m,
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {
                            return Err(StoreError::MissingObject(*obj));
                        }
                        Err(e) => return Err(StoreError::io(&path, e)),
                    };
                    let recorded: Option<(i64, i64, i64, i64)> = stmt
                        .query_row([obj.to_string()], |r| {
                            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                        })
                        .optional()?;
                    if recorded != Some(version_of(&meta)) {
                        unchecked.push((*obj, meta));
                    }
                }
            }
            tx.commit()?;
        }
        if unchecked.is_empty() {
            return Ok(());
        }
        unchecked.sort_by_key(|(o, _)| *o);
        unchecked.dedup_by_key(|(o, _)| *o);
        // Hash in parallel; the first corrupt object (in object order) is the error.
        let results: Vec<Result<(), StoreError>> = unchecked
            .par_iter()
            .map(|(obj, _)| rehash(self, obj))
            .collect();
        results.into_iter().collect::<Result<Vec<()>, _>>()?;
        // Recorded with the metadata taken before hashing; a file changed in the same clock tick
        // as it was hashed would keep its metadata, so recent files are checked again next time.
        let now = unix_now_ns();
        let mut conn = self.conn()?;
        let tx = conn.write_tx()?;
        {
            let mut ins = tx.prepare_cached(
                "INSERT OR REPLACE INTO checked_objects (object, size, mtime_ns, ino, dev)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for (obj, meta) in &unchecked {
                let (size, mtime, ino, dev) = version_of(meta);
                if mtime > now.saturating_sub(RACY_WINDOW_NS) {
                    continue;
                }
                ins.execute(params![obj.to_string(), size, mtime, ino, dev])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Opens blob `d` for reading through a reader that hashes what it reads and fails at the
    /// end (with an [`io::ErrorKind::InvalidData`] error naming the object) if the bytes do not
    /// hash to `d`. Read it to the end to get the check.
    pub fn open_blob_checked(&self, d: &B3Digest) -> Result<CheckedReader<fs::File>, StoreError> {
        Ok(CheckedReader::new(self.open_blob(d)?, ObjectRef::Blob(*d)))
    }

    /// [`Store::open_blob_checked`] for an OCI blob (SHA-256).
    pub fn open_oci_blob_checked(
        &self,
        d: &Sha256Digest,
    ) -> Result<CheckedReader<fs::File>, StoreError> {
        Ok(CheckedReader::new(
            self.open_oci_blob(d)?,
            ObjectRef::Oci(*d),
        ))
    }
}

enum Hasher {
    Blake3(Box<blake3::Hasher>),
    Sha256(sha2::Sha256),
}

/// A reader of one object that checks its digest when the end is reached.
pub struct CheckedReader<R> {
    inner: R,
    object: ObjectRef,
    hasher: Hasher,
    done: bool,
}

impl<R> std::fmt::Debug for CheckedReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckedReader")
            .field("object", &self.object)
            .finish()
    }
}

impl<R: Read> CheckedReader<R> {
    /// Checks `inner` against the name of `object`: BLAKE3 for blobs and trees, SHA-256 for OCI
    /// blobs.
    pub fn new(inner: R, object: ObjectRef) -> Self {
        let hasher = match object {
            ObjectRef::Blob(_) | ObjectRef::Tree(_) => {
                Hasher::Blake3(Box::new(blake3::Hasher::new()))
            }
            ObjectRef::Oci(_) => Hasher::Sha256(sha2::Sha256::new()),
        };
        CheckedReader {
            inner,
            object,
            hasher,
            done: false,
        }
    }

    fn finish(&mut self) -> io::Result<()> {
        if self.done {
            return Ok(());
        }
        self.done = true;
        let actual = match (&mut self.hasher, self.object) {
            (Hasher::Blake3(h), ObjectRef::Blob(d) | ObjectRef::Tree(d)) => {
                let got = B3Digest::from(h.finalize());
                (got != d).then(|| got.to_string())
            }
            (Hasher::Sha256(h), ObjectRef::Oci(d)) => {
                let got = Sha256Digest::from_bytes(std::mem::take(h).finalize().into());
                (got != d).then(|| got.to_string())
            }
            _ => Some("(no digest)".to_owned()),
        };
        match actual {
            None => Ok(()),
            Some(actual) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                StoreError::Corrupt {
                    object: self.object,
                    expected: digest_of(&self.object),
                    actual,
                },
            )),
        }
    }
}

impl<R: Read> Read for CheckedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.finish()?;
            return Ok(0);
        }
        match &mut self.hasher {
            Hasher::Blake3(h) => {
                h.update(&buf[..n]);
            }
            Hasher::Sha256(h) => h.update(&buf[..n]),
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn flip_first_byte(path: &std::path::Path) {
        fs::set_permissions(path, fs::Permissions::from_mode(0o644)).expect("test setup");
        let mut bytes = fs::read(path).expect("test setup");
        bytes[0] ^= 0x20;
        fs::write(path, bytes).expect("test setup");
    }

    #[test]
    fn a_flipped_byte_is_found_by_both_checks() {
        let dir = tempfile::tempdir().expect("test setup");
        let store = Store::open(dir.path()).expect("test setup");
        let blob = store.put_blob(b"hello world\n").expect("test setup");
        let oci = store.put_oci_blob(b"{\"a\":1}").expect("test setup");
        let objects = [ObjectRef::Blob(blob), ObjectRef::Oci(oci)];
        store.check_objects(&objects).expect("test setup");
        let mut out = Vec::new();
        store
            .open_blob_checked(&blob)
            .expect("test setup")
            .read_to_end(&mut out)
            .expect("test setup");
        assert_eq!(out, b"hello world\n");

        flip_first_byte(&store.blob_path(&blob));
        let err = store
            .open_blob_checked(&blob)
            .expect("test setup")
            .read_to_end(&mut Vec::new())
            .expect_err("corrupt");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains(&blob.to_string()), "{err}");
        match store.check_objects(&objects) {
            Err(StoreError::Corrupt { object, .. }) => assert_eq!(object, ObjectRef::Blob(blob)),
            other => panic!("{other:?}"),
        }

        flip_first_byte(&store.oci_blob_path(&oci));
        match store.check_objects(&[ObjectRef::Oci(oci)]) {
            Err(StoreError::Corrupt { object, .. }) => assert_eq!(object, ObjectRef::Oci(oci)),
            other => panic!("{other:?}"),
        }
        let missing = ObjectRef::Oci(Sha256Digest::of(b"nothing"));
        assert!(matches!(
            store.check_objects(&[missing]),
            Err(StoreError::MissingObject(o)) if o == missing
        ));
    }
}
