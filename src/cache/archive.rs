//! The cache archive: a canonical, versioned serialisation of a set of store objects and everything
//! they reach (a tree's blobs and subtrees), in the spirit of Nix's NAR.
//!
//! # Format `himg-archive-v1`
//!
//! The archive is compressed with zstd as a whole; uncompressed it is:
//!
//! ```text
//! archive = magic:"himg-archive\n" version:u8 (= 1) record* end:u8 (= 0)
//! record  = kind:u8 length:u64 bytes:[u8; length]
//! kind    = 1 (blob: file contents) | 2 (tree: the store's canonical tree encoding) | 3 (OCI blob)
//! ```
//!
//! Integers are little-endian. Objects are not named: their names are their hashes (BLAKE3 for
//! blobs and trees, SHA-256 for OCI blobs), recomputed by the reader. Each object appears once; the
//! order is a depth-first post-order from the roots in the order given, a tree's children in entry
//! order, so that children always precede the trees that name them and the same roots always give
//! the same bytes. Modes other than the executable bit, owners and times are not part of store
//! trees, so they are not in the archive either.

use std::collections::BTreeSet;
use std::io::{self, Read, Write};

use himg_store::{Node, ObjectRef, Store, Tree};

use super::CacheError;

/// The magic bytes that start every (uncompressed) archive.
pub const MAGIC: &[u8] = b"himg-archive\n";
/// The archive format version.
pub const VERSION: u8 = 1;
/// The name of the format in cache entries.
pub const FORMAT: &str = "himg-archive-v1";

const KIND_END: u8 = 0;
const KIND_BLOB: u8 = 1;
const KIND_TREE: u8 = 2;
const KIND_OCI: u8 = 3;

/// What [`write`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PackStats {
    /// Objects in the archive.
    pub objects: u64,
    /// Bytes of object contents (uncompressed).
    pub bytes: u64,
}

/// Objects reachable from `roots`, in archive order.
pub fn closure(store: &Store, roots: &[ObjectRef]) -> Result<Vec<ObjectRef>, CacheError> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for r in roots {
        visit(store, *r, &mut seen, &mut out)?;
    }
    Ok(out)
}

fn visit(
    store: &Store,
    r: ObjectRef,
    seen: &mut BTreeSet<ObjectRef>,
    out: &mut Vec<ObjectRef>,
) -> Result<(), CacheError> {
    if !seen.insert(r) {
        return Ok(());
    }
    if let ObjectRef::Tree(d) = r {
        let tree = store.get_tree(&d)?;
        for e in &tree.entries {
            match &e.node {
                Node::File { blob, .. } => visit(store, ObjectRef::Blob(*blob), seen, out)?,
                Node::Dir { tree } => visit(store, ObjectRef::Tree(*tree), seen, out)?,
                Node::Symlink { .. } => {}
            }
        }
    }
    out.push(r);
    Ok(())
}

/// Writes the uncompressed archive of `roots` (and what they reach) to `out`.
pub fn write(
    store: &Store,
    roots: &[ObjectRef],
    out: &mut dyn Write,
) -> Result<PackStats, CacheError> {
    let mut stats = PackStats::default();
    let werr = |e| CacheError::io("archive", e);
    out.write_all(MAGIC).map_err(werr)?;
    out.write_all(&[VERSION]).map_err(werr)?;
    for obj in closure(store, roots)? {
        let kind = match obj {
            ObjectRef::Blob(_) => KIND_BLOB,
            ObjectRef::Tree(_) => KIND_TREE,
            ObjectRef::Oci(_) => KIND_OCI,
        };
        let path = store.object_path(&obj);
        let mut f = std::fs::File::open(&path).map_err(|e| CacheError::io(path.display(), e))?;
        let len = f
            .metadata()
            .map_err(|e| CacheError::io(path.display(), e))?
            .len();
        out.write_all(&[kind]).map_err(werr)?;
        out.write_all(&len.to_le_bytes()).map_err(werr)?;
        // Checked as it is read: a corrupt object is not pushed.
        let mut checked = himg_store::CheckedReader::new((&mut f).take(len), obj);
        let copied = io::copy(&mut checked, out).map_err(|e| CacheError::io(path.display(), e))?;
        if copied != len {
            return Err(CacheError::Archive(format!(
                "{obj} changed size while being archived"
            )));
        }
        stats.objects += 1;
        stats.bytes += len;
    }
    out.write_all(&[KIND_END]).map_err(werr)?;
    Ok(stats)
}

/// Writes the zstd-compressed archive of `roots` to `out`.
pub fn pack(
    store: &Store,
    roots: &[ObjectRef],
    out: &mut dyn Write,
) -> Result<PackStats, CacheError> {
    let mut enc = zstd::Encoder::new(out, 3).map_err(|e| CacheError::io("zstd", e))?;
    let stats = write(store, roots, &mut enc)?;
    enc.finish().map_err(|e| CacheError::io("zstd", e))?;
    Ok(stats)
}

/// Reads a zstd-compressed archive into the store; returns the objects it held, each re-hashed by
/// the store as it was written (so an object's name always matches its bytes). Trees are stored only
/// after their children ([`Store::put_tree`] checks), so a truncated or reordered archive fails
/// without leaving a tree that names a missing object.
pub fn unpack(store: &Store, input: &mut dyn Read) -> Result<BTreeSet<ObjectRef>, CacheError> {
    let mut dec = zstd::Decoder::new(input).map_err(|e| CacheError::Archive(e.to_string()))?;
    read(store, &mut dec)
}

/// [`unpack`] bounded by what a signed entry declares: the archive's objects must add up to
/// exactly `nar_size` bytes, so a small archive cannot expand into more than it declared (and
/// records beyond it are refused before they are written).
pub fn unpack_bounded(
    store: &Store,
    input: &mut dyn Read,
    nar_size: u64,
) -> Result<BTreeSet<ObjectRef>, CacheError> {
    let mut dec = zstd::Decoder::new(input).map_err(|e| CacheError::Archive(e.to_string()))?;
    read_inner(store, &mut dec, Some(nar_size))
}

/// [`unpack`] for an uncompressed archive.
pub fn read(store: &Store, input: &mut dyn Read) -> Result<BTreeSet<ObjectRef>, CacheError> {
    read_inner(store, input, None)
}

fn read_inner(
    store: &Store,
    input: &mut dyn Read,
    nar_size: Option<u64>,
) -> Result<BTreeSet<ObjectRef>, CacheError> {
    let bad = |e: io::Error| CacheError::Archive(e.to_string());
    let mut total: u64 = 0;
    let mut magic = [0u8; 14];
    input.read_exact(&mut magic).map_err(bad)?;
    if &magic[..MAGIC.len()] != MAGIC {
        return Err(CacheError::Archive("not a himg archive".into()));
    }
    if magic[MAGIC.len()] != VERSION {
        return Err(CacheError::Archive(format!(
            "unsupported archive version {}",
            magic[MAGIC.len()]
        )));
    }
    let mut objects = BTreeSet::new();
    loop {
        let mut kind = [0u8; 1];
        input.read_exact(&mut kind).map_err(bad)?;
        if kind[0] == KIND_END {
            break;
        }
        let mut len = [0u8; 8];
        input.read_exact(&mut len).map_err(bad)?;
        let len = u64::from_le_bytes(len);
        total = total.saturating_add(len);
        if let Some(limit) = nar_size
            && total > limit
        {
            return Err(CacheError::Archive(format!(
                "its objects exceed the {limit} bytes its entry declares"
            )));
        }
        let mut body = input.take(len);
        let obj = match kind[0] {
            KIND_BLOB => {
                let mut w = store.blob_writer()?;
                io::copy(&mut body, &mut w).map_err(bad)?;
                let (d, _) = w.finish()?;
                ObjectRef::Blob(d)
            }
            KIND_OCI => {
                let mut w = store.oci_blob_writer()?;
                io::copy(&mut body, &mut w).map_err(bad)?;
                let (d, _) = w.finish()?;
                ObjectRef::Oci(d)
            }
            KIND_TREE => {
                if len > 64 << 20 {
                    return Err(CacheError::Archive(format!("tree of {len} bytes")));
                }
                let mut bytes = Vec::new();
                body.read_to_end(&mut bytes).map_err(bad)?;
                let tree = Tree::decode(&bytes).map_err(|e| CacheError::Archive(e.to_string()))?;
                ObjectRef::Tree(store.put_tree(&tree)?)
            }
            k => return Err(CacheError::Archive(format!("unknown record kind {k}"))),
        };
        if body.limit() != 0 {
            return Err(CacheError::Archive("truncated record".into()));
        }
        if !objects.insert(obj) {
            return Err(CacheError::Archive(format!("{obj} appears twice")));
        }
    }
    if let Some(limit) = nar_size
        && total != limit
    {
        return Err(CacheError::Archive(format!(
            "its objects hold {total} bytes, not the {limit} bytes its entry declares"
        )));
    }
    let mut rest = [0u8; 1];
    if input.read(&mut rest).map_err(bad)? != 0 {
        return Err(CacheError::Archive("bytes after the end record".into()));
    }
    Ok(objects)
}

#[cfg(test)]
mod tests {
    use himg_store::{Node, ObjectRef, Store, Tree, TreeEntry};

    use super::*;

    fn sample(store: &Store) -> ObjectRef {
        let a = store.put_blob(b"a\n").unwrap();
        let sub = store
            .put_tree(
                &Tree::from_entries(vec![TreeEntry {
                    name: "x".into(),
                    node: Node::File {
                        blob: a,
                        size: 2,
                        executable: true,
                    },
                }])
                .unwrap(),
            )
            .unwrap();
        let root = store
            .put_tree(
                &Tree::from_entries(vec![
                    TreeEntry {
                        name: "a".into(),
                        node: Node::File {
                            blob: a,
                            size: 2,
                            executable: false,
                        },
                    },
                    TreeEntry {
                        name: "d".into(),
                        node: Node::Dir { tree: sub },
                    },
                    TreeEntry {
                        name: "l".into(),
                        node: Node::Symlink { target: "a".into() },
                    },
                ])
                .unwrap(),
            )
            .unwrap();
        ObjectRef::Tree(root)
    }

    #[test]
    fn round_trip_is_canonical_and_children_come_first() {
        let dir = tempfile::tempdir().unwrap();
        let a = Store::open(&dir.path().join("a")).unwrap();
        let root = sample(&a);
        let mut raw = Vec::new();
        let stats = write(&a, &[root], &mut raw).unwrap();
        assert_eq!(stats.objects, 3, "the shared blob is stored once");
        let mut again = Vec::new();
        write(&a, &[root], &mut again).unwrap();
        assert_eq!(raw, again);
        assert_eq!(closure(&a, &[root]).unwrap().last(), Some(&root));

        let b = Store::open(&dir.path().join("b")).unwrap();
        let got = read(&b, &mut raw.as_slice()).unwrap();
        assert!(got.contains(&root));
        assert!(b.has_object(&root));
        let mut packed = Vec::new();
        pack(&a, &[root], &mut packed).unwrap();
        let c = Store::open(&dir.path().join("c")).unwrap();
        assert!(unpack(&c, &mut packed.as_slice()).unwrap().contains(&root));
    }

    #[test]
    fn malformed_archives_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let a = Store::open(&dir.path().join("a")).unwrap();
        let root = sample(&a);
        let mut raw = Vec::new();
        write(&a, &[root], &mut raw).unwrap();
        let b = Store::open(&dir.path().join("b")).unwrap();
        let mut v2 = raw.clone();
        v2[MAGIC.len()] = 2;
        assert!(read(&b, &mut v2.as_slice()).is_err());
        let truncated = &raw[..raw.len() - 5];
        assert!(read(&b, &mut &truncated[..]).is_err());
        // The root tree (the cut record) was not stored: no tree names a missing object.
        assert!(!b.has_object(&root));
        let mut trailing = raw.clone();
        trailing.push(0);
        assert!(read(&b, &mut trailing.as_slice()).is_err());
    }
}
