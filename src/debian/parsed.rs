//! Parsed Packages indexes kept on disk, so that a process locking against an index another
//! process already parsed loads typed packages instead of reading, hashing and parsing the text.
//!
//! One file per index file, beside the verified index text in the index cache
//! (`<store>/indexes/`), named by the signed sha256 of the index file the Release lists (the
//! `IndexKey` component `locking` memoises by):
//!
//! ```text
//! <store>/indexes/<64 hex>.parsed
//!   0   16  magic               b"himg-parsed-idx\n"
//!  16    4  format version      FORMAT_VERSION, u32 little-endian
//!  20   32  index sha256        the signed digest of the index file (the name repeats it)
//!  52    8  payload length      u64 little-endian; the file is exactly HEADER_LEN + this long
//!  60   32  payload blake3
//!  92   ..  payload             postcard of Vec<BinaryPackage>
//! ```
//!
//! A file is written only from an index that hashed to its signed value, through a temporary
//! file in the same directory renamed into place (not synced: a torn file fails its checks).
//! Reading it trusts nothing: the length is bounded before anything is allocated, the magic,
//! version, digest, length and blake3 must all match, the payload must decode, and every package
//! must look like one `index` could have produced (names, architecture, `.deb` path and sha256);
//! a file that fails any of this is simply not used ([`load`] says why) and the caller parses
//! the verified text again and rewrites it. The blake3 guards against damage (a torn or
//! truncated write, a flipped bit), not against someone who may write to the store, who could
//! change anything in it anyway.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::index::BinaryPackage;

/// The version of the layout above and of the payload's encoding: bumped whenever
/// [`BinaryPackage`] or what `index::parse_packages` puts into it changes (the test
/// `the_encoding_is_pinned` fails first), so an older file is never read as a newer one.
pub const FORMAT_VERSION: u32 = 1;

const MAGIC: &[u8; 16] = b"himg-parsed-idx\n";

/// Bytes before the payload.
pub const HEADER_LEN: usize = 92;

/// The largest parsed index read back (Debian's largest index parses to a few tens of MB).
pub const MAX_PAYLOAD: u64 = 1 << 30;

/// Why a parsed index was not used (or could not be written).
#[derive(Debug, thiserror::Error)]
pub enum ParsedError {
    #[error("no parsed index at `{0}`")]
    Missing(PathBuf),
    #[error("I/O error on `{path}`")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path}` is not a parsed index of this version ({reason})")]
    Header { path: PathBuf, reason: &'static str },
    #[error("`{path}` is damaged: its payload does not hash to its header's blake3")]
    Damaged { path: PathBuf },
    #[error("`{path}` does not decode")]
    Decode {
        path: PathBuf,
        #[source]
        source: postcard::Error,
    },
    #[error("`{path}` lists a package no index could (`{package}`)")]
    Implausible { path: PathBuf, package: String },
    #[error("cannot encode a parsed index")]
    Encode(#[source] postcard::Error),
}

/// Where the parsed form of the index file with signed digest `sha256` lives in `dir`.
pub fn path(dir: &Path, sha256: &[u8; 32]) -> PathBuf {
    dir.join(format!("{}.parsed", hex::encode(sha256)))
}

/// The packages of the index file with signed digest `sha256`, as parsed and kept by [`save`].
pub fn load(dir: &Path, sha256: &[u8; 32]) -> Result<Vec<BinaryPackage>, ParsedError> {
    let path = path(dir, sha256);
    let io = |source: std::io::Error| ParsedError::Io {
        path: path.clone(),
        source,
    };
    let header = |reason| ParsedError::Header {
        path: path.clone(),
        reason,
    };
    let mut file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ParsedError::Missing(path));
        }
        Err(e) => return Err(io(e)),
    };
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(header("not a regular file"));
    }
    let mut head = [0u8; HEADER_LEN];
    file.read_exact(&mut head)
        .map_err(|_| header("shorter than its header"))?;
    let (magic, rest) = head.split_at(16);
    let (version, rest) = rest.split_at(4);
    let (digest, rest) = rest.split_at(32);
    let (length, blake) = rest.split_at(8);
    if magic != MAGIC {
        return Err(header("wrong magic"));
    }
    if version != FORMAT_VERSION.to_le_bytes() {
        return Err(header("another format version"));
    }
    if digest != sha256 {
        return Err(header("made from another index"));
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(length);
    let length = u64::from_le_bytes(len);
    if length > MAX_PAYLOAD {
        return Err(header("payload too large"));
    }
    if meta.len() != HEADER_LEN as u64 + length {
        return Err(header("truncated or extended"));
    }
    // Bounded twice: by the checked length, and by reading at most one byte more than it.
    let mut payload = Vec::with_capacity(usize::try_from(length).unwrap_or(0));
    (&mut file)
        .take(length + 1)
        .read_to_end(&mut payload)
        .map_err(io)?;
    if payload.len() as u64 != length {
        return Err(header("truncated or extended"));
    }
    if blake3::hash(&payload).as_bytes()[..] != blake[..] {
        return Err(ParsedError::Damaged { path });
    }
    let packages: Vec<BinaryPackage> =
        postcard::from_bytes(&payload).map_err(|source| ParsedError::Decode {
            path: path.clone(),
            source,
        })?;
    if let Some(p) = packages.iter().find(|p| !plausible(p)) {
        return Err(ParsedError::Implausible {
            path,
            package: p.name.escape_debug().take(100).collect(),
        });
    }
    super::index_cache::touch(&path);
    Ok(packages)
}

/// Keeps `packages`, parsed from the verified index file with signed digest `sha256`, in `dir`:
/// written to a temporary file there, then renamed into place (a concurrent writer writes the
/// same bytes).
pub fn save(dir: &Path, sha256: &[u8; 32], packages: &[BinaryPackage]) -> Result<(), ParsedError> {
    let payload = postcard::to_allocvec(packages).map_err(ParsedError::Encode)?;
    let final_path = path(dir, sha256);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ParsedError::Io { path, source }
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".parsed-")
        .suffix(".part")
        // Readable like the index text beside it (a store may be shared; the umask applies).
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .tempfile_in(dir)
        .map_err(io(dir))?;
    let mut head = Vec::with_capacity(HEADER_LEN);
    head.extend_from_slice(MAGIC);
    head.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    head.extend_from_slice(sha256);
    head.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    head.extend_from_slice(blake3::hash(&payload).as_bytes());
    let file = tmp.as_file_mut();
    file.write_all(&head).map_err(io(&final_path))?;
    file.write_all(&payload).map_err(io(&final_path))?;
    // Not synced: a file torn by a crash fails its length or blake3 check and is parsed again.
    tmp.persist(&final_path)
        .map_err(|e| ParsedError::Io {
            path: final_path.clone(),
            source: e.error,
        })
        .map(|_| ())
}

/// Could `index::parse_packages` have produced `p`? The fields that name things later (a `.deb`
/// path and digest, the lock's names) are held to what an index's fields look like.
fn plausible(p: &BinaryPackage) -> bool {
    let word = |s: &str| !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control());
    let line = |s: &str| !s.chars().any(char::is_control);
    word(&p.name)
        && word(&p.architecture)
        && word(&p.source)
        && word(&p.filename)
        && p.sha256.len() == 64
        && p.sha256
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && p.priority.as_deref().is_none_or(line)
        && p.section.as_deref().is_none_or(line)
        && line(&p.other_names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::debian::index::parse_packages;

    const SAMPLE: &str = "\
Package: libc6
Source: glibc (2.36-9+deb12u4)
Version: 2.36-9+deb12u4+b1
Installed-Size: 12988
Architecture: amd64
Multi-Arch: same
Depends: libgcc-s1, libcrypt1 (>= 1:4.4.10-10~)
Recommends: libidn2-0 (>= 2.0.5~)
Suggests: glibc-doc, debconf | debconf-2.0
Breaks: aide (<< 0.17.3-4+b3)
Protected: yes
Description: GNU C Library: Shared libraries
 Contains the standard libraries.
Priority: optional
Section: libs
Filename: pool/main/g/glibc/libc6_2.36-9+deb12u4_amd64.deb
Size: 2757936
SHA256: 8dd3b3f47a1d4eab7c3a8e5a1a35d1e4a0a6b2e3b4b1f5b6a1d0aab3c2b1a0f0

Package: mawk
Version: 0:1.3.4.20200120-3.1
Architecture: amd64
Multi-Arch: foreign
Pre-Depends: libc6:any (>= 2.34)
Provides: awk (= 1.3.4)
Conflicts: nawk
Filename: pool/main/m/mawk/mawk_1.3.4.20200120-3.1_amd64.deb
Size: 1
SHA256: 0000000000000000000000000000000000000000000000000000000000000000
";

    const KEY: [u8; 32] = [7; 32];

    fn sample() -> Vec<BinaryPackage> {
        parse_packages(SAMPLE).expect("sample")
    }

    fn saved() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        save(dir.path(), &KEY, &sample()).expect("save");
        let file = path(dir.path(), &KEY);
        (dir, file)
    }

    #[test]
    fn a_saved_index_loads_as_parsed() {
        let (dir, file) = saved();
        assert_eq!(load(dir.path(), &KEY).expect("load"), sample());
        // Nothing but the file itself is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        assert_eq!(names, [file]);
        assert!(matches!(
            load(dir.path(), &[8; 32]),
            Err(ParsedError::Missing(_))
        ));
    }

    /// The bytes of the sample's payload. When this fails, the encoding changed: bump
    /// `FORMAT_VERSION`, then update the digest.
    #[test]
    fn the_encoding_is_pinned() {
        let payload = postcard::to_allocvec(&sample()).expect("encode");
        assert_eq!(
            blake3::hash(&payload).to_hex().as_str(),
            "404d1d1d3a63e35e2bcaff07e5da3e14af45ed77520b2966c593223d9e882c37",
            "the parsed-index encoding changed: bump parsed::FORMAT_VERSION (now {FORMAT_VERSION})"
        );
    }

    #[test]
    fn damaged_files_are_refused_never_trusted() {
        let (dir, file) = saved();
        let good = std::fs::read(&file).expect("read");
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", Vec::new()),
            ("header only", good[..HEADER_LEN].to_vec()),
            ("truncated", good[..good.len() - 1].to_vec()),
            ("extended", [good.as_slice(), b"x"].concat()),
            ("flipped payload bit", {
                let mut b = good.clone();
                let last = b.len() - 1;
                b[last] ^= 1;
                b
            }),
            ("wrong magic", {
                let mut b = good.clone();
                b[0] = b'X';
                b
            }),
            ("another version", {
                let mut b = good.clone();
                b[16] = b[16].wrapping_add(1);
                b
            }),
            ("another index", {
                let mut b = good.clone();
                b[20] ^= 1;
                b
            }),
            ("huge length", {
                let mut b = good.clone();
                b[52..60].copy_from_slice(&u64::MAX.to_le_bytes());
                b
            }),
        ];
        for (what, bytes) in cases {
            std::fs::write(&file, &bytes).expect("write");
            assert!(load(dir.path(), &KEY).is_err(), "{what} was accepted");
        }
        // A directory in its place.
        std::fs::remove_file(&file).expect("rm");
        std::fs::create_dir(&file).expect("mkdir");
        assert!(load(dir.path(), &KEY).is_err());
    }

    /// A file with a consistent header whose payload is hostile: garbage, or packages no index
    /// could hold. Refused without a panic.
    #[test]
    fn hostile_payloads_with_a_valid_checksum_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let write = |payload: &[u8]| {
            let mut b = Vec::new();
            b.extend_from_slice(MAGIC);
            b.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
            b.extend_from_slice(&KEY);
            b.extend_from_slice(&(payload.len() as u64).to_le_bytes());
            b.extend_from_slice(blake3::hash(payload).as_bytes());
            b.extend_from_slice(payload);
            std::fs::write(path(dir.path(), &KEY), b).expect("write");
        };
        // A vector claiming 2^63 elements, then nothing.
        write(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
        assert!(matches!(
            load(dir.path(), &KEY),
            Err(ParsedError::Decode { .. })
        ));
        let mut seed = 0x9e37_79b9_u32;
        for len in 0..200 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    seed as u8
                })
                .collect();
            write(&bytes);
            let _ = load(dir.path(), &KEY);
        }
        for edit in [
            |p: &mut BinaryPackage| p.sha256 = "../../etc/passwd".into(),
            |p: &mut BinaryPackage| p.sha256 = p.sha256.to_ascii_uppercase().replace('0', "A"),
            |p: &mut BinaryPackage| p.filename = "pool/a b.deb".into(),
            |p: &mut BinaryPackage| p.name = String::new(),
            |p: &mut BinaryPackage| p.architecture = "amd64\n".into(),
        ] {
            let mut packages = sample();
            edit(&mut packages[1]);
            write(&postcard::to_allocvec(&packages).expect("encode"));
            assert!(matches!(
                load(dir.path(), &KEY),
                Err(ParsedError::Implausible { .. })
            ));
        }
    }
}
