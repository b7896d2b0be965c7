//! `.deb` → safe, normalised filesystem entries.
//!
//! A `.deb` is an `ar` archive holding, in this order, `debian-binary` (exactly `"2.0\n"`),
//! `control.tar[.gz|.xz|.zst]` and `data.tar[.gz|.xz|.zst]`. Members whose name starts with `_` are
//! ignored (dpkg reserves them); anything else is refused. The control archive is small and read into
//! memory (capped at [`MAX_CONTROL_BYTES`]); the data archive is **streamed**: every regular file goes
//! straight from the decompressor to a [`ContentSink`], so a whole `.deb` is never held in memory, and
//! nothing is written anywhere but the sink.
//!
//! # What is refused (each with its own [`DebError`] variant naming the package and the path)
//! - member names that are absolute (`/etc/x`), contain a `..` component or a line break, or are not
//!   UTF-8;
//! - symlinks whose **relative** target, resolved lexically from the link's directory (after the merged-/usr
//!   mapping), climbs above `/`. Absolute targets are kept: they resolve inside the image root;
//! - hardlinks whose target is not an earlier regular file of the same package;
//! - character/block devices and FIFOs unless [`UnpackOptions::allow_devices`];
//! - a file whose data is shorter than its header says, an `ar` member shorter than its header says,
//!   a corrupt tar header (bad checksum), GNU sparse files and other tar entry types;
//! - unsupported compression (`.bz2`, `.lzma`, anything unknown) — by name, before any decoding;
//! - two entries with the same path and different kind, content or metadata (identical repeats are
//!   merged: with merged /usr a package may ship `./lib/x/` and `./usr/lib/x/`);
//! - an entry below a path that the same package ships as a symlink (the layer would otherwise write
//!   through the symlink).
//!
//! # Merged /usr (the default, [`UnpackOptions::merged_usr`])
//! Paths whose first component is `bin`, `sbin`, `lib`, `lib32`, `lib64` or `libx32` are rewritten to
//! `/usr/…`; [`DebEntry::shipped_path`] keeps the original path (dpkg's `.list` and `md5sums` use it).
//! The directory entries for those top-level directories themselves become the `/usr/<dir>` directory
//! (with `shipped_path` `/<dir>`), merged with the package's own `./usr/<dir>/` if it has one; the
//! `/bin → usr/bin` symlinks come from the image ([`merged_usr_symlinks`]), never from a package. When a
//! directory is shipped under both names with different metadata, the `./usr/…` one wins (that is the
//! directory on a merged-/usr system) instead of being refused. A package that ships the canonical symlink
//! itself (trixie's `base-files`: `/bin → usr/bin`) has it dropped for the same reason; any other
//! non-directory at one of those paths is refused ([`DebError::MergedUsrConflict`]).
//! Symlink targets are kept exactly as written, as dpkg does on a merged-/usr system.
//!
//! # Metadata
//! Modes are the tar mode masked to `0o7777`; owners are the numeric uid/gid of the tar header (names are
//! ignored). A hardlink entry carries the mode and owner of its target (they share an inode).
//! Parent directories that a package does not ship are synthesised as `0755 0:0`. Within a group of
//! hardlinked paths the bytewise-first path is the regular file and the others link to it (tar order
//! may differ), so sorted layers can be written front to back.
//! `entries` are sorted by path (bytewise), so parents come before children.

use std::collections::BTreeMap;
use std::io::{self, Read};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Opaque identifier of stored content, produced by a [`ContentSink`] (e.g. `"b3:…"`, `"sha256:…"`).
pub type ContentId = String;

/// Upper bound on the decompressed control archive (it holds a few small text files and scripts).
pub const MAX_CONTROL_BYTES: u64 = 64 * 1024 * 1024;

/// Where file contents go while a `.deb` is streamed.
pub trait ContentSink {
    /// Store `size` bytes read from `reader` and return their id. `path` is the entry's final path,
    /// for diagnostics only. The implementation should read exactly `size` bytes; the unpacker checks
    /// the count itself and drains anything left.
    fn put(&mut self, path: &str, reader: &mut dyn Read, size: u64) -> io::Result<ContentId>;
}

/// Random access to content stored earlier, for the generators that look inside files (ELF headers).
pub trait ContentSource {
    /// Up to `len` bytes of `content` starting at `offset`; fewer only at the end of the content.
    fn read_range(&self, content: &str, offset: u64, len: usize) -> io::Result<Vec<u8>>;
}

/// An in-memory [`ContentSink`] and [`ContentSource`] for tests: ids are `sha256:<hex>`.
#[derive(Debug, Default, Clone)]
pub struct MemorySink {
    /// Stored contents by id.
    pub blobs: BTreeMap<ContentId, Vec<u8>>,
}

impl MemorySink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// The bytes stored under `id`.
    pub fn get(&self, id: &str) -> Option<&[u8]> {
        self.blobs.get(id).map(Vec::as_slice)
    }
}

impl ContentSink for MemorySink {
    fn put(&mut self, _path: &str, reader: &mut dyn Read, size: u64) -> io::Result<ContentId> {
        let mut data = Vec::with_capacity(size.min(1 << 20) as usize);
        reader.take(size).read_to_end(&mut data)?;
        let id = format!("sha256:{}", hex(&Sha256::digest(&data)));
        self.blobs.insert(id.clone(), data);
        Ok(id)
    }
}

impl ContentSource for MemorySink {
    fn read_range(&self, content: &str, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let data = self.blobs.get(content).ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("no content `{content}`"))
        })?;
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(data.len());
        let end = start.saturating_add(len).min(data.len());
        Ok(data[start..end].to_vec())
    }
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// What a filesystem entry is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DebEntryKind {
    /// A regular file whose bytes are in the sink.
    File { size: u64, content: ContentId },
    /// A directory.
    Dir,
    /// A symbolic link; `target` exactly as written in the package.
    Symlink { target: String },
    /// A hard link to `target`, an absolute normalised path of an earlier regular file (after mapping).
    Hardlink { target: String },
    /// A character device (only with [`UnpackOptions::allow_devices`]).
    CharDevice { major: u32, minor: u32 },
    /// A block device (only with [`UnpackOptions::allow_devices`]).
    BlockDevice { major: u32, minor: u32 },
    /// A named pipe (only with [`UnpackOptions::allow_devices`]).
    Fifo,
}

/// One filesystem entry of a package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DebEntry {
    /// Absolute, normalised path (`/usr/bin/python3`), after the merged-/usr mapping.
    pub path: String,
    /// What it is.
    pub kind: DebEntryKind,
    /// Permission bits, `<= 0o7777`.
    pub mode: u32,
    /// Numeric owner.
    pub uid: u32,
    /// Numeric group.
    pub gid: u32,
    /// The path as shipped in the package (`/lib/x86_64-linux-gnu/libc.so.6`) when the merged-/usr
    /// mapping changed it; `None` when it is `path`, or for synthesised entries.
    pub shipped_path: Option<String>,
}

impl DebEntry {
    /// A directory entry.
    pub fn dir(path: &str, mode: u32) -> Self {
        Self {
            path: path.to_owned(),
            kind: DebEntryKind::Dir,
            mode,
            uid: 0,
            gid: 0,
            shipped_path: None,
        }
    }

    /// A regular file whose bytes are the store blob `content` (root-owned).
    pub fn file(path: &str, size: u64, content: &str, mode: u32) -> Self {
        Self {
            path: path.to_owned(),
            kind: DebEntryKind::File {
                size,
                content: content.to_owned(),
            },
            mode,
            uid: 0,
            gid: 0,
            shipped_path: None,
        }
    }

    /// A symlink entry (mode 0777, root).
    pub fn symlink(path: &str, target: &str) -> Self {
        Self {
            path: path.to_owned(),
            kind: DebEntryKind::Symlink {
                target: target.to_owned(),
            },
            mode: 0o777,
            uid: 0,
            gid: 0,
            shipped_path: None,
        }
    }

    /// The path dpkg records for this entry: the shipped one if the mapping changed it.
    pub fn dpkg_path(&self) -> &str {
        self.shipped_path.as_deref().unwrap_or(&self.path)
    }
}

/// Options for [`unpack_deb`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackOptions {
    /// Rewrite `/bin`, `/sbin`, `/lib*` to `/usr/…` (default `true`).
    pub merged_usr: bool,
    /// Accept device nodes and FIFOs (default `false`).
    pub allow_devices: bool,
}

impl Default for UnpackOptions {
    fn default() -> Self {
        Self {
            merged_usr: true,
            allow_devices: false,
        }
    }
}

/// The control members that act when apt installs a package (`prerm` and `postrm` act only on removal).
pub const INSTALL_TIME_SCRIPTS: [&str; 4] = ["preinst", "config", "postinst", "triggers"];

/// The control members the configure step needs to act as apt would (the install-time scripts, and
/// debconf's `templates` that `config` and `postinst` ask their questions from).
pub const INSTALL_TIME_FILES: [&str; 5] =
    ["preinst", "config", "postinst", "templates", "triggers"];

/// The result of unpacking one `.deb`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnpackedDeb {
    /// The `control` file text.
    pub control: String,
    /// The `md5sums` control file, if any (paths relative, as shipped, e.g. `lib/x86_64-linux-gnu/…`).
    pub md5sums: Option<String>,
    /// Conffile paths (absolute, as shipped); `remove-on-upgrade` lines are skipped.
    pub conffiles: Vec<String>,
    /// `(conffile path, md5 hex)` for each conffile found in the data archive, computed while streaming
    /// (the package's `md5sums` never lists conffiles); dpkg's status `Conffiles:` field needs them.
    pub conffile_md5s: Vec<(String, String)>,
    /// Names of maintainer scripts present (`preinst`, `postinst`, `prerm`, `postrm`, `config`), and
    /// `triggers` when the package declares trigger interests: they are never run, but the caller
    /// says which install-time ones were not (see [`INSTALL_TIME_SCRIPTS`]).
    pub maintainer_scripts: Vec<String>,
    /// The directives of the `triggers` control file (comments and blank lines dropped), e.g.
    /// `activate-noawait ldconfig`.
    pub triggers: Vec<String>,
    /// The [`INSTALL_TIME_FILES`] the package has, by name (sorted), as shipped.
    pub install_files: Vec<(String, Vec<u8>)>,
    /// Filesystem entries sorted by path.
    pub entries: Vec<DebEntry>,
    /// `"none"`, `"gzip"`, `"xz"` or `"zstd"`.
    pub data_compression: &'static str,
}

/// Why a `.deb` was refused.
#[derive(Debug, thiserror::Error)]
pub enum DebError {
    #[error("{package}: cannot read the .deb container")]
    Container {
        package: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "{package}: `debian-binary` must be the first member and read \"2.0\\n\", found {found:?}"
    )]
    BadDebianBinary { package: String, found: String },
    #[error("{package}: unexpected ar member `{member}` (expected {expected})")]
    UnexpectedMember {
        package: String,
        member: String,
        expected: &'static str,
    },
    #[error("{package}: missing ar member {member}")]
    MissingMember {
        package: String,
        member: &'static str,
    },
    #[error(
        "{package}: member `{member}` uses unsupported compression `{compression}` (supported: none, gz, xz, zst)"
    )]
    UnsupportedCompression {
        package: String,
        member: String,
        compression: String,
    },
    #[error("{package}: ar member `{member}` declares {declared} bytes but {actual} were read")]
    MemberSize {
        package: String,
        member: String,
        declared: u64,
        actual: u64,
    },
    #[error("{package}: cannot read tar archive `{member}`")]
    Tar {
        package: String,
        member: String,
        #[source]
        source: io::Error,
    },
    #[error("{package}: control archive is larger than {limit} bytes")]
    ControlTooLarge { package: String, limit: u64 },
    #[error("{package}: control archive has no `control` file")]
    NoControlFile { package: String },
    #[error("{package}: control file `{file}` is not UTF-8")]
    ControlNotUtf8 { package: String, file: String },
    #[error("{package}: unsafe member name `{path}`: {reason}")]
    UnsafePath {
        package: String,
        path: String,
        reason: &'static str,
    },
    #[error("{package}: symlink `{path}` -> `{target}` escapes the root")]
    SymlinkEscapes {
        package: String,
        path: String,
        target: String,
    },
    #[error("{package}: hardlink `{path}` -> `{target}`: {reason}")]
    BadHardlink {
        package: String,
        path: String,
        target: String,
        reason: &'static str,
    },
    #[error("{package}: `{path}` is a {kind}; device nodes and FIFOs are not allowed")]
    DeviceNotAllowed {
        package: String,
        path: String,
        kind: &'static str,
    },
    #[error("{package}: `{path}` declares {declared} bytes but {actual} were read")]
    SizeMismatch {
        package: String,
        path: String,
        declared: u64,
        actual: u64,
    },
    #[error("{package}: `{path}` has unsupported tar entry type {entry_type:?}")]
    UnsupportedEntryType {
        package: String,
        path: String,
        entry_type: char,
    },
    #[error("{package}: `{path}` appears twice with different {what}")]
    DuplicatePath {
        package: String,
        path: String,
        what: &'static str,
    },
    #[error("{package}: `{path}` conflicts with the merged-/usr layout: {reason}")]
    MergedUsrConflict {
        package: String,
        path: String,
        reason: String,
    },
    #[error("{package}: `{path}` lies below `{symlink}`, which the package ships as a symlink")]
    ThroughSymlink {
        package: String,
        path: String,
        symlink: String,
    },
    #[error("{package}: `{path}`: uid/gid {value} does not fit in 32 bits")]
    OwnerRange {
        package: String,
        path: String,
        value: u64,
    },
    #[error("{package}: cannot store `{path}`")]
    Content {
        package: String,
        path: String,
        #[source]
        source: io::Error,
    },
}

/// The top-level directories that merged /usr folds into `/usr`.
pub const MERGED_USR_DIRS: [&str; 6] = ["bin", "sbin", "lib", "lib32", "lib64", "libx32"];

/// The merged-/usr skeleton for a base layer: `/usr`, `/usr/{bin,sbin,lib,lib64}` directories and the
/// `/bin → usr/bin`, `/sbin → usr/sbin`, `/lib → usr/lib`, `/lib64 → usr/lib64` symlinks (the set trixie's
/// base-files ships on amd64; harmless elsewhere). A package that ships into `/lib32` or `/libx32` needs
/// `/lib32 → usr/lib32` too: add it with [`DebEntry::symlink`].
pub fn merged_usr_symlinks() -> Vec<DebEntry> {
    let mut v = vec![DebEntry::dir("/usr", 0o755)];
    for d in ["bin", "sbin", "lib", "lib64"] {
        v.push(DebEntry::dir(&format!("/usr/{d}"), 0o755));
        v.push(DebEntry::symlink(&format!("/{d}"), &format!("usr/{d}")));
    }
    v.sort_by(|a, b| a.path.cmp(&b.path));
    v
}

/// Normalise a tar member name to an absolute path: strip `./`, drop `.` and empty components, refuse
/// absolute names and `..`. `Ok(None)` is the root itself.
pub fn normalise_member(raw: &[u8]) -> Result<Option<String>, &'static str> {
    let s = std::str::from_utf8(raw).map_err(|_| "not UTF-8")?;
    if s.starts_with('/') {
        return Err("absolute path");
    }
    if s.contains('\0') {
        return Err("NUL byte");
    }
    if s.contains(['\n', '\r']) {
        // dpkg's .list and status files are line-based: such a name could forge entries.
        return Err("line break in name");
    }
    let mut out = String::with_capacity(s.len() + 1);
    for comp in s.split('/') {
        match comp {
            "" | "." => {}
            ".." => return Err("`..` component"),
            c => {
                out.push('/');
                out.push_str(c);
            }
        }
    }
    Ok(if out.is_empty() { None } else { Some(out) })
}

/// Apply the merged-/usr mapping to a normalised absolute path.
pub fn map_merged_usr(path: &str) -> Option<String> {
    let first = path.strip_prefix('/')?.split('/').next().unwrap_or("");
    MERGED_USR_DIRS
        .contains(&first)
        .then(|| format!("/usr{path}"))
}

/// Resolve `target` lexically from the directory of `link` (both absolute normalised paths for `link`).
/// Returns the absolute resolved path, or `None` if a relative target climbs above `/`.
pub fn resolve_link_target(link: &str, target: &str) -> Option<String> {
    let mut stack: Vec<&str> = Vec::new();
    if !target.starts_with('/') {
        stack.extend(link.split('/').filter(|c| !c.is_empty()));
        stack.pop();
    }
    for comp in target.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                if stack.pop().is_none() {
                    if target.starts_with('/') {
                        continue; // "/.." is "/"
                    }
                    return None;
                }
            }
            c => stack.push(c),
        }
    }
    Some(format!("/{}", stack.join("/")))
}

/// Counts the bytes read through it.
struct Counting<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

fn drain(r: &mut dyn Read) -> io::Result<u64> {
    io::copy(r, &mut io::sink())
}

/// The compression of the ar member `name`, which must be `{stem}.tar` with an optional `.gz`, `.xz`
/// or `.zst` (`expected` says so in the error).
fn member_compression(
    package: &str,
    name: &str,
    stem: &str,
    expected: &'static str,
) -> Result<&'static str, DebError> {
    let Some(rest) = name.strip_prefix(stem).and_then(|r| r.strip_prefix(".tar")) else {
        return Err(DebError::UnexpectedMember {
            package: package.to_owned(),
            member: name.to_owned(),
            expected,
        });
    };
    match rest {
        "" => Ok("none"),
        ".gz" => Ok("gzip"),
        ".xz" => Ok("xz"),
        ".zst" => Ok("zstd"),
        other => Err(DebError::UnsupportedCompression {
            package: package.to_owned(),
            member: name.to_owned(),
            compression: other.trim_start_matches('.').to_owned(),
        }),
    }
}

fn decoder<'a>(compression: &'static str, r: Box<dyn Read + 'a>) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match compression {
        "gzip" => Box::new(flate2::read::GzDecoder::new(r)),
        "xz" => Box::new(liblzma::read::XzDecoder::new(r)),
        "zstd" => Box::new(zstd::stream::read::Decoder::new(r)?),
        _ => r,
    })
}

/// Reads the first `ar` member, which must be `debian-binary` holding exactly `"2.0\n"`.
fn check_debian_binary<R: Read>(ar: &mut ar::Archive<R>, package: &str) -> Result<(), DebError> {
    let container = |source| DebError::Container {
        package: package.to_owned(),
        source,
    };
    let mut first = ar
        .next_entry()
        .ok_or_else(|| DebError::MissingMember {
            package: package.to_owned(),
            member: "debian-binary",
        })?
        .map_err(container)?;
    if first.header().identifier() != b"debian-binary" {
        return Err(DebError::BadDebianBinary {
            package: package.to_owned(),
            found: format!(
                "member `{}`",
                String::from_utf8_lossy(first.header().identifier())
            ),
        });
    }
    let mut version = Vec::new();
    (&mut first)
        .take(64)
        .read_to_end(&mut version)
        .map_err(container)?;
    if version != b"2.0\n" {
        return Err(DebError::BadDebianBinary {
            package: package.to_owned(),
            found: String::from_utf8_lossy(&version).into_owned(),
        });
    }
    Ok(())
}

/// The `control` file of a `.deb`, read with the same checks as [`unpack_deb`] but without
/// reading the data archive (what `himg why` needs of a package: its relations).
pub fn control_of_deb(reader: impl Read, name_for_errors: &str) -> Result<String, DebError> {
    let package = name_for_errors.to_owned();
    let mut ar = ar::Archive::new(reader);
    check_debian_binary(&mut ar, &package)?;
    while let Some(member) = ar.next_entry() {
        let mut member = member.map_err(|source| DebError::Container {
            package: package.clone(),
            source,
        })?;
        let name = String::from_utf8_lossy(member.header().identifier()).into_owned();
        if name.starts_with('_') {
            continue;
        }
        let compression =
            member_compression(&package, &name, "control", "control.tar[.gz|.xz|.zst]")?;
        return Ok(read_control(&mut member, compression, &package, &name)?.control);
    }
    Err(DebError::MissingMember {
        package,
        member: "control.tar",
    })
}

/// Unpack one `.deb` read from `reader`. Regular-file contents go to `sink`; everything else is returned.
pub fn unpack_deb(
    reader: impl Read,
    name_for_errors: &str,
    opts: &UnpackOptions,
    sink: &mut dyn ContentSink,
) -> Result<UnpackedDeb, DebError> {
    let package = name_for_errors.to_owned();
    let container = |source| DebError::Container {
        package: package.clone(),
        source,
    };
    let mut ar = ar::Archive::new(reader);
    check_debian_binary(&mut ar, &package)?;

    let mut control: Option<ControlParts> = None;
    let mut data: Option<(DataParts, &'static str)> = None;
    while let Some(member) = ar.next_entry() {
        let member = member.map_err(container)?;
        let name = String::from_utf8_lossy(member.header().identifier()).into_owned();
        let declared = member.header().size();
        if name.starts_with('_') {
            continue;
        }
        let mut counting = Counting {
            inner: member,
            count: 0,
        };
        if control.is_none() {
            let compression =
                member_compression(&package, &name, "control", "control.tar[.gz|.xz|.zst]")?;
            control = Some(read_control(&mut counting, compression, &package, &name)?);
        } else if data.is_none() {
            let compression =
                member_compression(&package, &name, "data", "data.tar[.gz|.xz|.zst]")?;
            let conffiles: Vec<String> = control
                .as_ref()
                .map(|c| c.conffiles.clone())
                .unwrap_or_default();
            match read_data(
                &mut counting,
                compression,
                &package,
                &name,
                opts,
                &conffiles,
                sink,
            ) {
                Ok(found) => data = Some((found, compression)),
                Err(e) => {
                    // A member cut short is the precise diagnosis for whatever the tar reader hit.
                    if drain(&mut counting).is_ok() && counting.count < declared {
                        return Err(DebError::MemberSize {
                            package,
                            member: name,
                            declared,
                            actual: counting.count,
                        });
                    }
                    return Err(e);
                }
            }
        } else {
            return Err(DebError::UnexpectedMember {
                package,
                member: name,
                expected: "nothing after data.tar",
            });
        }
        drain(&mut counting).map_err(container)?;
        if counting.count != declared {
            return Err(DebError::MemberSize {
                package,
                member: name,
                declared,
                actual: counting.count,
            });
        }
    }
    let control = control.ok_or_else(|| DebError::MissingMember {
        package: package.clone(),
        member: "control.tar",
    })?;
    let (found, data_compression) = data.ok_or_else(|| DebError::MissingMember {
        package: package.clone(),
        member: "data.tar",
    })?;
    let entries = found.entries;
    Ok(UnpackedDeb {
        control: control.control,
        md5sums: control.md5sums,
        conffiles: control.conffiles,
        conffile_md5s: found.conffile_md5s,
        maintainer_scripts: control.scripts,
        triggers: control.triggers,
        install_files: control.install_files,
        entries,
        data_compression,
    })
}

struct ControlParts {
    control: String,
    md5sums: Option<String>,
    conffiles: Vec<String>,
    scripts: Vec<String>,
    triggers: Vec<String>,
    install_files: Vec<(String, Vec<u8>)>,
}

fn read_control(
    member: &mut dyn Read,
    compression: &'static str,
    package: &str,
    member_name: &str,
) -> Result<ControlParts, DebError> {
    let tar_err = |source| DebError::Tar {
        package: package.to_owned(),
        member: member_name.to_owned(),
        source,
    };
    let decoded = decoder(compression, Box::new(member)).map_err(tar_err)?;
    let mut limited = decoded.take(MAX_CONTROL_BYTES + 1);
    let mut archive = tar::Archive::new(&mut limited);
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for entry in archive.entries().map_err(tar_err)? {
        let mut entry = entry.map_err(tar_err)?;
        let raw = entry.path_bytes().into_owned();
        let path = normalise_member(&raw).map_err(|reason| DebError::UnsafePath {
            package: package.to_owned(),
            path: String::from_utf8_lossy(&raw).into_owned(),
            reason,
        })?;
        let Some(path) = path else { continue };
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = path.trim_start_matches('/').to_owned();
        let mut buf = Vec::new();
        entry.read_to_end(&mut buf).map_err(tar_err)?;
        files.insert(name, buf);
    }
    // The decoded stream must end within the cap.
    drain(&mut limited).map_err(tar_err)?;
    if limited.limit() == 0 {
        return Err(DebError::ControlTooLarge {
            package: package.to_owned(),
            limit: MAX_CONTROL_BYTES,
        });
    }
    let text = |name: &str, bytes: Vec<u8>| {
        String::from_utf8(bytes).map_err(|_| DebError::ControlNotUtf8 {
            package: package.to_owned(),
            file: name.to_owned(),
        })
    };
    let control = files
        .remove("control")
        .ok_or_else(|| DebError::NoControlFile {
            package: package.to_owned(),
        })?;
    let control = text("control", control)?;
    let md5sums = files
        .remove("md5sums")
        .map(|b| text("md5sums", b))
        .transpose()?;
    let conffiles = match files.remove("conffiles") {
        Some(b) => text("conffiles", b)?
            .lines()
            .filter_map(|l| {
                let mut words: Vec<&str> = l.split_whitespace().collect();
                let path = words.pop()?;
                (!words.contains(&"remove-on-upgrade")).then(|| path.to_owned())
            })
            .collect(),
        None => Vec::new(),
    };
    let scripts = [
        "preinst", "postinst", "prerm", "postrm", "config", "triggers",
    ]
    .iter()
    .filter(|s| files.contains_key(**s))
    .map(|s| s.to_string())
    .collect();
    let triggers = match files.get("triggers") {
        Some(b) => String::from_utf8_lossy(b)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect(),
        None => Vec::new(),
    };
    let install_files = files
        .into_iter()
        .filter(|(name, _)| INSTALL_TIME_FILES.contains(&name.as_str()))
        .collect();
    Ok(ControlParts {
        control,
        md5sums,
        conffiles,
        scripts,
        triggers,
        install_files,
    })
}

struct DataParts {
    entries: Vec<DebEntry>,
    conffile_md5s: Vec<(String, String)>,
}

/// Feeds everything read through it to an MD5 hasher (for conffiles).
struct Md5Tee<'a, R> {
    inner: R,
    hasher: &'a mut md5::Md5,
}

impl<R: Read> Read for Md5Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        md5::Digest::update(self.hasher, &buf[..n]);
        Ok(n)
    }
}

#[allow(clippy::too_many_arguments)]
fn read_data(
    member: &mut dyn Read,
    compression: &'static str,
    package: &str,
    member_name: &str,
    opts: &UnpackOptions,
    conffiles: &[String],
    sink: &mut dyn ContentSink,
) -> Result<DataParts, DebError> {
    let mut conffile_md5s: Vec<(String, String)> = Vec::new();
    let pkg = || package.to_owned();
    let tar_err = |source| DebError::Tar {
        package: pkg(),
        member: member_name.to_owned(),
        source,
    };
    let mut decoded = decoder(compression, Box::new(member)).map_err(tar_err)?;
    let mut entries: BTreeMap<String, DebEntry> = BTreeMap::new();
    {
        let mut archive = tar::Archive::new(&mut decoded);
        for entry in archive.entries().map_err(tar_err)? {
            let mut entry = entry.map_err(tar_err)?;
            let raw = entry.path_bytes().into_owned();
            let raw_str = String::from_utf8_lossy(&raw).into_owned();
            let shipped = normalise_member(&raw).map_err(|reason| DebError::UnsafePath {
                package: pkg(),
                path: raw_str.clone(),
                reason,
            })?;
            let header = entry.header();
            let entry_type = header.entry_type();
            if entry_type.is_pax_global_extensions() {
                continue;
            }
            let Some(shipped) = shipped else {
                // The root directory itself: the image provides it.
                if !entry_type.is_dir() {
                    return Err(DebError::UnsafePath {
                        package: pkg(),
                        path: raw_str,
                        reason: "non-directory at the root",
                    });
                }
                continue;
            };
            let mode = header.mode().map_err(tar_err)? & 0o7777;
            let owner = |v: io::Result<u64>| -> Result<u32, DebError> {
                let v = v.map_err(tar_err)?;
                u32::try_from(v).map_err(|_| DebError::OwnerRange {
                    package: pkg(),
                    path: shipped.clone(),
                    value: v,
                })
            };
            let uid = owner(header.uid())?;
            let gid = owner(header.gid())?;
            let devices = if entry_type.is_character_special() || entry_type.is_block_special() {
                let major = header.device_major().map_err(tar_err)?.unwrap_or(0);
                let minor = header.device_minor().map_err(tar_err)?.unwrap_or(0);
                (major, minor)
            } else {
                (0, 0)
            };
            let link_name = entry.link_name_bytes().map(|b| b.into_owned());
            let size = entry.size();

            // Merged-/usr mapping.
            let mapped = if opts.merged_usr {
                map_merged_usr(&shipped)
            } else {
                None
            };
            if opts.merged_usr
                && mapped.is_some()
                && !shipped[1..].contains('/')
                && !entry_type.is_dir()
            {
                // A non-directory at /bin, /lib, ... itself.
                if entry_type.is_symlink() {
                    let target = link_name
                        .as_deref()
                        .map(String::from_utf8_lossy)
                        .unwrap_or_default();
                    if target.trim_end_matches('/') == format!("usr{shipped}")
                        || target.trim_end_matches('/') == format!("/usr{shipped}")
                    {
                        continue;
                    }
                    let reason = format!("symlink to `{target}` instead of `usr{shipped}`");
                    return Err(DebError::MergedUsrConflict {
                        package: pkg(),
                        path: shipped,
                        reason,
                    });
                }
                return Err(DebError::MergedUsrConflict {
                    package: pkg(),
                    path: shipped,
                    reason: "the image has a symlink into /usr here".to_owned(),
                });
            }
            let (path, shipped_path) = match mapped {
                Some(m) => (m, Some(shipped)),
                None => (shipped, None),
            };
            let no_data = || -> Result<(), DebError> {
                if size != 0 {
                    return Err(DebError::SizeMismatch {
                        package: pkg(),
                        path: path.clone(),
                        declared: size,
                        actual: 0,
                    });
                }
                Ok(())
            };

            let mut de = DebEntry {
                path: path.clone(),
                kind: DebEntryKind::Dir,
                mode,
                uid,
                gid,
                shipped_path,
            };
            use tar::EntryType as T;
            match entry_type {
                T::Regular | T::Continuous => {
                    let shipped = de.dpkg_path().to_owned();
                    let mut hasher = conffiles.contains(&shipped).then(md5::Md5::default);
                    let inner: Box<dyn Read + '_> = match hasher.as_mut() {
                        Some(h) => Box::new(Md5Tee {
                            inner: &mut entry,
                            hasher: h,
                        }),
                        None => Box::new(&mut entry),
                    };
                    let mut counting = Counting { inner, count: 0 };
                    let content = sink.put(&path, &mut counting, size).map_err(|source| {
                        DebError::Content {
                            package: pkg(),
                            path: path.clone(),
                            source,
                        }
                    })?;
                    drain(&mut counting).map_err(tar_err)?;
                    let read = counting.count;
                    drop(counting);
                    if let Some(h) = hasher {
                        conffile_md5s.push((shipped, hex(&md5::Digest::finalize(h))));
                    }
                    if read != size {
                        return Err(DebError::SizeMismatch {
                            package: pkg(),
                            path,
                            declared: size,
                            actual: read,
                        });
                    }
                    de.kind = DebEntryKind::File { size, content };
                }
                T::Directory => no_data()?,
                T::Symlink => {
                    no_data()?;
                    let target = link_name.ok_or_else(|| DebError::UnsafePath {
                        package: pkg(),
                        path: path.clone(),
                        reason: "symlink without target",
                    })?;
                    let target = String::from_utf8(target).map_err(|_| DebError::UnsafePath {
                        package: pkg(),
                        path: path.clone(),
                        reason: "symlink target not UTF-8",
                    })?;
                    if target.is_empty() || target.contains('\0') {
                        return Err(DebError::UnsafePath {
                            package: pkg(),
                            path,
                            reason: "empty symlink target",
                        });
                    }
                    if resolve_link_target(&path, &target).is_none() {
                        return Err(DebError::SymlinkEscapes {
                            package: pkg(),
                            path,
                            target,
                        });
                    }
                    de.kind = DebEntryKind::Symlink { target };
                }
                T::Link => {
                    no_data()?;
                    let raw_target = link_name.unwrap_or_default();
                    let target_str = String::from_utf8_lossy(&raw_target).into_owned();
                    let bad = |reason| DebError::BadHardlink {
                        package: pkg(),
                        path: path.clone(),
                        target: target_str.clone(),
                        reason,
                    };
                    let target = normalise_member(&raw_target)
                        .map_err(bad)?
                        .ok_or_else(|| bad("target is the root"))?;
                    let target = if opts.merged_usr {
                        map_merged_usr(&target).unwrap_or(target)
                    } else {
                        target
                    };
                    let Some(t) = entries.get(&target) else {
                        return Err(bad("target is not an earlier member of this package"));
                    };
                    if !matches!(t.kind, DebEntryKind::File { .. }) {
                        return Err(bad("target is not a regular file"));
                    }
                    (de.mode, de.uid, de.gid) = (t.mode, t.uid, t.gid);
                    de.kind = DebEntryKind::Hardlink { target };
                }
                T::Char | T::Block | T::Fifo => {
                    let kind = match entry_type {
                        T::Char => "character device",
                        T::Block => "block device",
                        _ => "FIFO",
                    };
                    if !opts.allow_devices {
                        return Err(DebError::DeviceNotAllowed {
                            package: pkg(),
                            path,
                            kind,
                        });
                    }
                    no_data()?;
                    let (major, minor) = devices;
                    de.kind = match entry_type {
                        T::Char => DebEntryKind::CharDevice { major, minor },
                        T::Block => DebEntryKind::BlockDevice { major, minor },
                        _ => DebEntryKind::Fifo,
                    };
                }
                other => {
                    return Err(DebError::UnsupportedEntryType {
                        package: pkg(),
                        path,
                        entry_type: other.as_byte() as char,
                    });
                }
            }
            insert_entry(&mut entries, de, package)?;
        }
    }
    // Check the compressed stream to its end (xz/zstd/gzip integrity checks run at the end).
    drain(&mut decoded).map_err(tar_err)?;
    conffile_md5s.sort_by_key(|(p, _)| conffiles.iter().position(|c| c == p));
    Ok(DataParts {
        entries: finish_entries(entries, package)?,
        conffile_md5s,
    })
}

fn insert_entry(
    entries: &mut BTreeMap<String, DebEntry>,
    de: DebEntry,
    package: &str,
) -> Result<(), DebError> {
    match entries.get(&de.path) {
        None => {
            entries.insert(de.path.clone(), de);
            Ok(())
        }
        Some(old) => {
            let both_dirs = old.kind == DebEntryKind::Dir && de.kind == DebEntryKind::Dir;
            if both_dirs && (old.shipped_path.is_some() || de.shipped_path.is_some()) {
                // `./lib/x/` and `./usr/lib/x/` differing in metadata: on a merged-/usr system the
                // directory is /usr/lib/x, so the `./usr` entry wins.
                if old.shipped_path.is_some() && de.shipped_path.is_none() {
                    entries.insert(de.path.clone(), de);
                }
                return Ok(());
            }
            let what = if std::mem::discriminant(&old.kind) != std::mem::discriminant(&de.kind) {
                "kinds"
            } else if old.kind != de.kind {
                "content"
            } else if (old.mode, old.uid, old.gid) != (de.mode, de.uid, de.gid) {
                "mode or owner"
            } else {
                // An identical repeat (`./lib/x/` and `./usr/lib/x/`): keep one entry, recording the
                // canonical shipped path when there is one.
                if de.shipped_path.is_none()
                    && let Some(e) = entries.get_mut(&de.path)
                {
                    e.shipped_path = None;
                }
                return Ok(());
            };
            Err(DebError::DuplicatePath {
                package: package.to_owned(),
                path: de.path,
                what,
            })
        }
    }
}

/// Refuse entries below a symlink of the package, synthesise missing parents, return sorted.
fn finish_entries(
    mut entries: BTreeMap<String, DebEntry>,
    package: &str,
) -> Result<Vec<DebEntry>, DebError> {
    let mut missing = Vec::new();
    for (path, _) in entries.iter() {
        let mut parent = path.as_str();
        while let Some(idx) = parent.rfind('/') {
            parent = &parent[..idx];
            if parent.is_empty() {
                break;
            }
            match entries.get(parent) {
                Some(DebEntry {
                    kind: DebEntryKind::Dir,
                    ..
                }) => {}
                Some(DebEntry {
                    kind: DebEntryKind::Symlink { .. },
                    ..
                }) => {
                    return Err(DebError::ThroughSymlink {
                        package: package.to_owned(),
                        path: path.clone(),
                        symlink: parent.to_owned(),
                    });
                }
                Some(_) => {
                    return Err(DebError::DuplicatePath {
                        package: package.to_owned(),
                        path: parent.to_owned(),
                        what: "kinds (a non-directory with children)",
                    });
                }
                None => missing.push(parent.to_owned()),
            }
        }
    }
    for m in missing {
        entries
            .entry(m.clone())
            .or_insert_with(|| DebEntry::dir(&m, 0o755));
    }
    // In path order a hardlink may come before its target; make the first path of each link group the
    // regular file and point the others at it, so a sorted layer can be written front to back.
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (path, e) in entries.iter() {
        if let DebEntryKind::Hardlink { target } = &e.kind {
            groups.entry(target.clone()).or_default().push(path.clone());
        }
    }
    for (target, links) in groups {
        let first = links.iter().min().cloned().unwrap_or_default();
        if first >= target {
            continue;
        }
        let Some(file) = entries.get(&target).cloned() else {
            continue;
        };
        for l in links.iter().chain(std::iter::once(&target)) {
            if let Some(e) = entries.get_mut(l) {
                e.kind = if *l == first {
                    file.kind.clone()
                } else {
                    DebEntryKind::Hardlink {
                        target: first.clone(),
                    }
                };
            }
        }
    }
    Ok(entries.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise() {
        assert_eq!(
            normalise_member(b"./usr/bin/x"),
            Ok(Some("/usr/bin/x".into()))
        );
        assert_eq!(normalise_member(b"./"), Ok(None));
        assert_eq!(
            normalise_member(b"usr//bin/./x/"),
            Ok(Some("/usr/bin/x".into()))
        );
        assert!(normalise_member(b"/etc/passwd").is_err());
        assert!(normalise_member(b"./usr/../../etc").is_err());
    }

    #[test]
    fn mapping_and_resolution() {
        assert_eq!(
            map_merged_usr("/lib64/ld.so").as_deref(),
            Some("/usr/lib64/ld.so")
        );
        assert_eq!(map_merged_usr("/libexec/x"), None);
        assert_eq!(map_merged_usr("/bin"), Some("/usr/bin".into()));
        assert_eq!(
            resolve_link_target("/usr/bin/a", "../lib/x").as_deref(),
            Some("/usr/lib/x")
        );
        assert_eq!(
            resolve_link_target("/usr/bin/a", "../../x").as_deref(),
            Some("/x")
        );
        assert_eq!(resolve_link_target("/usr/bin/a", "../../../x"), None);
        assert_eq!(
            resolve_link_target("/usr/bin/a", "/../../etc").as_deref(),
            Some("/etc")
        );
    }
}
