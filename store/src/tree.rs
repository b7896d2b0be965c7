//! Trees: directory listings that name their children by digest (a Merkle tree).

use crate::id::B3Digest;

/// A directory: its entries, sorted by the bytes of their names, names unique.
///
/// A tree holds contents only — names, file contents, the executable bit, symlink targets and
/// subdirectories. Modes, owners and timestamps are image-level settings applied by the
/// composer, so the same files always make the same tree.
///
/// # Canonical encoding, format version 1
///
/// The digest of a tree is the BLAKE3 of this byte string; it must never change, which
/// `tests/tree_golden.rs` pins. All integers are little-endian.
///
/// ```text
/// tree    = version:u8 (= 0x01)  count:u32  entry*count
/// entry   = name_len:u16  name:[u8; name_len]  kind:u8  body
/// body    = kind 0x01 (file):    blob:[u8; 32]  size:u64  executable:u8 (0x00 | 0x01)
///         | kind 0x02 (dir):     tree:[u8; 32]
///         | kind 0x03 (symlink): target_len:u16  target:[u8; target_len]
/// ```
///
/// Names are UTF-8, 1–255 bytes, not `.` or `..`, without `/` or NUL, strictly increasing by
/// byte order. Symlink targets are UTF-8, 1–4095 bytes, without NUL. Decoding accepts exactly
/// the bytes encoding produces: anything else (another version, trailing bytes, an
/// executable byte of 2, unsorted names, …) is an error, so every tree has one encoding.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tree {
    /// The entries, sorted by name bytes.
    pub entries: Vec<TreeEntry>,
}

/// One named entry of a [`Tree`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEntry {
    /// The file name (one path component).
    pub name: String,
    /// What the name points at.
    pub node: Node,
}

/// The kinds of things a directory entry can be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A regular file whose contents are a blob.
    File {
        /// The contents.
        blob: B3Digest,
        /// The length of the contents in bytes.
        size: u64,
        /// Whether the file is executable (the image decides the exact mode).
        executable: bool,
    },
    /// A subdirectory.
    Dir {
        /// The subdirectory's tree.
        tree: B3Digest,
    },
    /// A symbolic link.
    Symlink {
        /// The link target, stored verbatim.
        target: String,
    },
}

/// What is wrong with a tree or its encoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    /// An entry name is not a single, ordinary path component.
    #[error("invalid entry name `{name}`: {reason}")]
    InvalidName {
        /// The name (lossily decoded).
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// Two entries are not in strictly increasing byte order.
    #[error("entries are not sorted: `{prev}` comes before `{next}`")]
    Unsorted {
        /// The earlier entry.
        prev: String,
        /// The later entry, which should have come first.
        next: String,
    },
    /// Two entries have the same name.
    #[error("duplicate entry `{0}`")]
    Duplicate(String),
    /// A symlink target is empty, too long or contains NUL.
    #[error("invalid symlink target for `{name}`: {reason}")]
    InvalidSymlink {
        /// The entry.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// More entries than the format can count.
    #[error("too many entries: {0}")]
    TooManyEntries(usize),
    /// The encoding is of a format version this build does not know.
    #[error("unsupported tree format version {0}")]
    UnsupportedVersion(u8),
    /// The encoding is malformed.
    #[error("malformed tree encoding at byte {offset}: {reason}")]
    Malformed {
        /// Where decoding stopped.
        offset: usize,
        /// Why.
        reason: &'static str,
    },
}

/// The current (and only) tree format version, the first byte of every encoding.
pub const TREE_FORMAT_VERSION: u8 = 1;
const MAX_NAME_LEN: usize = 255;
const MAX_TARGET_LEN: usize = 4095;
const KIND_FILE: u8 = 1;
const KIND_DIR: u8 = 2;
const KIND_SYMLINK: u8 = 3;

/// Checks that `name` can be a directory entry.
pub fn validate_name(name: &str) -> Result<(), TreeError> {
    let bad = |reason| {
        Err(TreeError::InvalidName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name == "." || name == ".." {
        return bad("`.` and `..` are not entries");
    }
    if name.len() > MAX_NAME_LEN {
        return bad("longer than 255 bytes");
    }
    if name.contains('/') {
        return bad("contains `/`");
    }
    if name.contains('\0') {
        return bad("contains NUL");
    }
    Ok(())
}

impl Tree {
    /// An empty directory.
    pub fn empty() -> Tree {
        Tree::default()
    }

    /// Builds a tree from entries in any order: sorts them, then validates.
    pub fn from_entries(mut entries: Vec<TreeEntry>) -> Result<Tree, TreeError> {
        entries.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        let tree = Tree { entries };
        tree.validate()?;
        Ok(tree)
    }

    /// Checks names, order, uniqueness and symlink targets.
    pub fn validate(&self) -> Result<(), TreeError> {
        if u32::try_from(self.entries.len()).is_err() {
            return Err(TreeError::TooManyEntries(self.entries.len()));
        }
        for (i, e) in self.entries.iter().enumerate() {
            validate_name(&e.name)?;
            if let Node::Symlink { target } = &e.node {
                let reason = if target.is_empty() {
                    Some("empty")
                } else if target.len() > MAX_TARGET_LEN {
                    Some("longer than 4095 bytes")
                } else if target.contains('\0') {
                    Some("contains NUL")
                } else {
                    None
                };
                if let Some(reason) = reason {
                    return Err(TreeError::InvalidSymlink {
                        name: e.name.clone(),
                        reason,
                    });
                }
            }
            if i > 0 {
                let prev = &self.entries[i - 1].name;
                match prev.as_bytes().cmp(e.name.as_bytes()) {
                    std::cmp::Ordering::Less => {}
                    std::cmp::Ordering::Equal => return Err(TreeError::Duplicate(e.name.clone())),
                    std::cmp::Ordering::Greater => {
                        return Err(TreeError::Unsorted {
                            prev: prev.clone(),
                            next: e.name.clone(),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// The canonical encoding (see the type's documentation). Validates first.
    pub fn encode(&self) -> Result<Vec<u8>, TreeError> {
        self.validate()?;
        let mut out = Vec::with_capacity(5 + self.entries.len() * 64);
        out.push(TREE_FORMAT_VERSION);
        // validate() checked that the count fits.
        let count = u32::try_from(self.entries.len())
            .map_err(|_| TreeError::TooManyEntries(self.entries.len()))?;
        out.extend_from_slice(&count.to_le_bytes());
        for e in &self.entries {
            push_str16(&mut out, &e.name);
            match &e.node {
                Node::File {
                    blob,
                    size,
                    executable,
                } => {
                    out.push(KIND_FILE);
                    out.extend_from_slice(blob.as_bytes());
                    out.extend_from_slice(&size.to_le_bytes());
                    out.push(u8::from(*executable));
                }
                Node::Dir { tree } => {
                    out.push(KIND_DIR);
                    out.extend_from_slice(tree.as_bytes());
                }
                Node::Symlink { target } => {
                    out.push(KIND_SYMLINK);
                    push_str16(&mut out, target);
                }
            }
        }
        Ok(out)
    }

    /// The tree's digest: BLAKE3 of [`Tree::encode`].
    pub fn digest(&self) -> Result<B3Digest, TreeError> {
        Ok(B3Digest::of(&self.encode()?))
    }

    /// Parses a canonical encoding, rejecting anything [`Tree::encode`] would not produce.
    pub fn decode(bytes: &[u8]) -> Result<Tree, TreeError> {
        let mut r = Reader { bytes, pos: 0 };
        let version = r.u8()?;
        if version != TREE_FORMAT_VERSION {
            return Err(TreeError::UnsupportedVersion(version));
        }
        let count = r.u32()?;
        // Each entry needs at least 2 + 1 + 1 + 32 bytes: don't trust `count` for allocation.
        let cap = usize::try_from(count)
            .unwrap_or(usize::MAX)
            .min(bytes.len() / 36);
        let mut entries = Vec::with_capacity(cap);
        for _ in 0..count {
            let name = r.str16()?;
            let node = match r.u8()? {
                KIND_FILE => {
                    let blob = B3Digest::from_bytes(r.array32()?);
                    let size = r.u64()?;
                    let executable = match r.u8()? {
                        0 => false,
                        1 => true,
                        _ => return Err(r.malformed("executable flag is not 0 or 1")),
                    };
                    Node::File {
                        blob,
                        size,
                        executable,
                    }
                }
                KIND_DIR => Node::Dir {
                    tree: B3Digest::from_bytes(r.array32()?),
                },
                KIND_SYMLINK => Node::Symlink { target: r.str16()? },
                _ => return Err(r.malformed("unknown entry kind")),
            };
            entries.push(TreeEntry { name, node });
        }
        if r.pos != bytes.len() {
            return Err(r.malformed("trailing bytes"));
        }
        let tree = Tree { entries };
        tree.validate()?;
        Ok(tree)
    }

    /// The entry called `name`, by binary search.
    pub fn get(&self, name: &str) -> Option<&Node> {
        self.entries
            .binary_search_by(|e| e.name.as_bytes().cmp(name.as_bytes()))
            .ok()
            .map(|i| &self.entries[i].node)
    }
}

fn push_str16(out: &mut Vec<u8>, s: &str) {
    // Names and targets are validated to at most 4095 bytes, which fits in u16.
    let len = u16::try_from(s.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&s.as_bytes()[..usize::from(len)]);
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn malformed(&self, reason: &'static str) -> TreeError {
        TreeError::Malformed {
            offset: self.pos,
            reason,
        }
    }

    fn take(&mut self, n: usize) -> Result<&[u8], TreeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| self.malformed("unexpected end of data"))?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], TreeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, TreeError> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, TreeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, TreeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn array32(&mut self) -> Result<[u8; 32], TreeError> {
        self.array()
    }

    fn str16(&mut self) -> Result<String, TreeError> {
        let len = u16::from_le_bytes(self.array()?);
        let start = self.pos;
        let raw = self.take(usize::from(len))?;
        match std::str::from_utf8(raw) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => Err(TreeError::Malformed {
                offset: start,
                reason: "string is not UTF-8",
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, data: &[u8], executable: bool) -> TreeEntry {
        TreeEntry {
            name: name.into(),
            node: Node::File {
                blob: B3Digest::of(data),
                size: data.len() as u64,
                executable,
            },
        }
    }

    #[test]
    fn round_trip() {
        let t = Tree::from_entries(vec![
            file("b", b"bee", true),
            TreeEntry {
                name: "a".into(),
                node: Node::Symlink {
                    target: "../x".into(),
                },
            },
            TreeEntry {
                name: "dir".into(),
                node: Node::Dir {
                    tree: Tree::empty().digest().expect("digest"),
                },
            },
        ])
        .expect("valid");
        assert_eq!(t.entries[0].name, "a");
        let enc = t.encode().expect("encode");
        assert_eq!(Tree::decode(&enc), Ok(t.clone()));
        assert!(t.get("dir").is_some());
        assert!(t.get("nope").is_none());
    }

    #[test]
    fn validation_errors() {
        for name in ["", ".", "..", "a/b", "nul\0", &"x".repeat(256)] {
            let r = Tree::from_entries(vec![file(name, b"", false)]);
            assert!(
                matches!(r, Err(TreeError::InvalidName { .. })),
                "{name:?}: {r:?}"
            );
        }
        assert!(Tree::from_entries(vec![file(&"x".repeat(255), b"", false)]).is_ok());
        assert_eq!(
            Tree::from_entries(vec![file("a", b"1", false), file("a", b"2", false)]),
            Err(TreeError::Duplicate("a".into()))
        );
        let unsorted = Tree {
            entries: vec![file("b", b"", false), file("a", b"", false)],
        };
        assert!(matches!(
            unsorted.validate(),
            Err(TreeError::Unsorted { .. })
        ));
        assert!(unsorted.encode().is_err());
        for target in ["", "a\0b"] {
            let t = Tree::from_entries(vec![TreeEntry {
                name: "l".into(),
                node: Node::Symlink {
                    target: target.into(),
                },
            }]);
            assert!(matches!(t, Err(TreeError::InvalidSymlink { .. })));
        }
        // Byte order, not Unicode or case order.
        let t = Tree::from_entries(vec![
            file("é", b"", false),
            file("Z", b"", false),
            file("a", b"", false),
        ])
        .expect("valid");
        let names: Vec<_> = t.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["Z", "a", "é"]);
    }

    #[test]
    fn decode_is_strict() {
        let t = Tree::from_entries(vec![file("f", b"x", false)]).expect("valid");
        let enc = t.encode().expect("encode");
        // Version.
        let mut bad = enc.clone();
        bad[0] = 2;
        assert_eq!(Tree::decode(&bad), Err(TreeError::UnsupportedVersion(2)));
        // Trailing byte.
        let mut bad = enc.clone();
        bad.push(0);
        assert!(matches!(
            Tree::decode(&bad),
            Err(TreeError::Malformed { .. })
        ));
        // Truncated.
        assert!(Tree::decode(&enc[..enc.len() - 1]).is_err());
        // Executable flag 2.
        let mut bad = enc.clone();
        let last = bad.len() - 1;
        bad[last] = 2;
        assert!(Tree::decode(&bad).is_err());
        // Unknown kind.
        let mut bad = enc.clone();
        bad[5 + 2 + 1] = 9;
        assert!(Tree::decode(&bad).is_err());
        // Huge count with no data must not allocate or panic.
        assert!(Tree::decode(&[1, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(Tree::decode(&[]).is_err());
    }
}
