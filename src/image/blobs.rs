//! Where an image's blobs live — files of an OCI layout, or byte ranges of an archive tar — and
//! readers that hash what passes through them so every blob is checked against its digest.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use sha2::{Digest as _, Sha256};

use super::error::{ImageError, io_err};

/// JSON blobs (indexes, manifests, configs) larger than this are refused: they are never this big.
const MAX_JSON_BLOB: u64 = 64 * 1024 * 1024;

/// The container the blobs are read from.
#[derive(Debug)]
pub(crate) enum Container {
    /// An OCI layout directory: `DIR/blobs/sha256/<hex>`.
    Layout(PathBuf),
    /// A bare blob directory: `DIR/sha256/<hex>` (the store's OCI blobs).
    BlobDir(PathBuf),
    /// A tar file; every regular file's data range by its normalised path.
    Archive {
        file: PathBuf,
        members: BTreeMap<String, (u64, u64)>,
    },
}

/// The blobs of one layout or archive, with extra digest → member names for docker-archives whose
/// layers are not stored under `blobs/sha256/`.
#[derive(Debug)]
pub(crate) struct Blobs {
    pub container: Container,
    pub aliases: BTreeMap<String, String>,
}

impl Blobs {
    /// The path shown in errors.
    pub fn origin(&self) -> &Path {
        match &self.container {
            Container::Layout(p) | Container::BlobDir(p) => p,
            Container::Archive { file, .. } => file,
        }
    }

    /// Opens the raw bytes of blob `digest` (`sha256:<hex>`); returns the reader and its length.
    pub fn open(&self, digest: &str) -> Result<(Box<dyn Read>, u64), ImageError> {
        let hex = digest_hex(digest)?;
        let missing = || ImageError::BlobMissing {
            digest: digest.to_owned(),
            container: self.origin().to_owned(),
        };
        match &self.container {
            Container::Layout(_) | Container::BlobDir(_) => {
                let path = match &self.container {
                    Container::Layout(dir) => dir.join("blobs").join("sha256").join(hex),
                    _ => self.origin().join("sha256").join(hex),
                };
                let f = match File::open(&path) {
                    Ok(f) => f,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(missing()),
                    Err(e) => return Err(io_err("open blob", &path)(e)),
                };
                let len = f.metadata().map_err(io_err("inspect blob", &path))?.len();
                Ok((Box::new(BufReader::with_capacity(256 * 1024, f)), len))
            }
            Container::Archive { file, .. } => {
                let member = self
                    .aliases
                    .get(digest)
                    .cloned()
                    .unwrap_or_else(|| format!("blobs/sha256/{hex}"));
                let (offset, len) = self.member(&member).ok_or_else(missing)?;
                let mut f = File::open(file).map_err(io_err("open", file))?;
                f.seek(SeekFrom::Start(offset))
                    .map_err(io_err("seek in", file))?;
                Ok((
                    Box::new(BufReader::with_capacity(256 * 1024, f).take(len)),
                    len,
                ))
            }
        }
    }

    /// Data range of an archive member.
    pub fn member(&self, name: &str) -> Option<(u64, u64)> {
        match &self.container {
            Container::Layout(_) | Container::BlobDir(_) => None,
            Container::Archive { members, .. } => members.get(name).copied(),
        }
    }

    /// Reads a whole archive member (small JSON files such as docker's `manifest.json`).
    pub fn read_member(&self, name: &str) -> Result<Option<Vec<u8>>, ImageError> {
        let Container::Archive { file, .. } = &self.container else {
            return Ok(None);
        };
        let Some((offset, len)) = self.member(name) else {
            return Ok(None);
        };
        if len > MAX_JSON_BLOB {
            return Err(ImageError::NotAnImage {
                path: file.clone(),
                reason: format!("`{name}` is implausibly large ({len} bytes)"),
            });
        }
        let mut f = File::open(file).map_err(io_err("open", file))?;
        f.seek(SeekFrom::Start(offset))
            .map_err(io_err("seek in", file))?;
        let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        f.take(len)
            .read_to_end(&mut buf)
            .map_err(io_err("read", file))?;
        Ok(Some(buf))
    }

    /// Reads a small blob whole and checks its digest (and size, when the descriptor gives one).
    pub fn read_verified(&self, digest: &str, size: Option<u64>) -> Result<Vec<u8>, ImageError> {
        let (reader, len) = self.open(digest)?;
        if let Some(expected) = size
            && expected != len
        {
            return Err(ImageError::BlobSizeMismatch {
                digest: digest.to_owned(),
                expected,
                actual: len,
                container: self.origin().to_owned(),
            });
        }
        if len > MAX_JSON_BLOB {
            return Err(ImageError::BlobSizeMismatch {
                digest: digest.to_owned(),
                expected: MAX_JSON_BLOB,
                actual: len,
                container: self.origin().to_owned(),
            });
        }
        let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        let mut reader = reader;
        reader
            .read_to_end(&mut buf)
            .map_err(io_err("read blob", self.origin()))?;
        let actual = super::read::sha256_str(&buf);
        if actual != digest {
            return Err(ImageError::BlobDigestMismatch {
                digest: digest.to_owned(),
                actual,
                container: self.origin().to_owned(),
            });
        }
        Ok(buf)
    }
}

/// The hex part of a `sha256:<hex>` digest, validated (it becomes a file name).
pub(crate) fn digest_hex(digest: &str) -> Result<&str, ImageError> {
    match digest.strip_prefix("sha256:") {
        Some(hex)
            if hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) =>
        {
            Ok(hex)
        }
        _ => Err(ImageError::BadDigest {
            digest: digest.to_owned(),
        }),
    }
}

/// A reader that hashes (sha256) and counts the bytes read through it.
pub(crate) struct Hashing {
    inner: Box<dyn Read>,
    hasher: Sha256,
    count: u64,
}

impl Hashing {
    pub fn new(inner: Box<dyn Read>) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Reads the rest of the stream, then returns `sha256:<hex>` and the byte count.
    pub fn finish(&mut self) -> io::Result<(String, u64)> {
        io::copy(self, &mut io::sink())?;
        let digest = format!("sha256:{}", hex::encode(self.hasher.clone().finalize()));
        Ok((digest, self.count))
    }
}

impl Read for Hashing {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// A [`Hashing`] reader shared between a decoder that reads from it and the code that finishes it.
#[derive(Clone)]
pub(crate) struct Shared(pub Rc<RefCell<Hashing>>);

impl Shared {
    pub fn new(inner: Box<dyn Read>) -> Self {
        Self(Rc::new(RefCell::new(Hashing::new(inner))))
    }

    pub fn finish(&self) -> io::Result<(String, u64)> {
        self.0.borrow_mut().finish()
    }
}

impl Read for Shared {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.borrow_mut().read(buf)
    }
}

/// Indexes the regular files of a tar archive (name → data offset and size) without reading their data.
pub(crate) fn index_archive(file: &Path) -> Result<BTreeMap<String, (u64, u64)>, ImageError> {
    let f = File::open(file).map_err(io_err("open", file))?;
    let mut archive = tar::Archive::new(BufReader::new(f));
    let not_tar = |e: io::Error| ImageError::NotAnImage {
        path: file.to_owned(),
        reason: format!("not a readable tar archive: {e}"),
    };
    let mut members = BTreeMap::new();
    for entry in archive.entries_with_seek().map_err(not_tar)? {
        let entry = entry.map_err(not_tar)?;
        if !matches!(
            entry.header().entry_type(),
            tar::EntryType::Regular | tar::EntryType::Continuous
        ) {
            continue;
        }
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let name = raw
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .collect::<Vec<_>>()
            .join("/");
        members.insert(name, (entry.raw_file_position(), entry.size()));
    }
    Ok(members)
}
