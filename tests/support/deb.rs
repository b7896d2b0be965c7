//! `.deb` files written in Rust for tests, including hostile ones.
//!
//! A `.deb` is an `ar` archive of `debian-binary` (`2.0\n`), `control.tar.{xz,zst,gz}` and
//! `data.tar.{xz,zst,gz}`. [`DebBuilder`] writes tar headers itself (GNU format, `./`-prefixed
//! names as dpkg-deb writes them, uid/gid 0, fixed mtime), which is what lets it also write the
//! entries a safe unpacker must refuse — see the `hostile_*` methods and their fixed paths.
//! Output is deterministic: the same builder calls give the same bytes.

use std::io::{self, Write};

use md5::Md5;
use sha2::{Digest, Sha256};

/// Default mtime of every entry: 2000-01-01T00:00:00Z.
pub const DEFAULT_MTIME: u64 = 946_684_800;

/// Path of [`DebBuilder::hostile_parent_escape`]'s file.
pub const HOSTILE_PARENT_PATH: &str = "./../../escape";
/// Path and target of [`DebBuilder::hostile_symlink_escape`]'s symlink.
pub const HOSTILE_SYMLINK: (&str, &str) = ("./escape-link", "/../../../../escape-target");
/// Path and target of [`DebBuilder::hostile_hardlink_outside`]'s hard link.
pub const HOSTILE_HARDLINK: (&str, &str) = ("./escape-hardlink", "../../../../etc/passwd");
/// Path of [`DebBuilder::hostile_char_device`]'s device node (char 1:3).
pub const HOSTILE_DEVICE: &str = "./dev-null-copy";
/// Symlink, its target, and the file written through it by [`DebBuilder::hostile_through_symlink`].
pub const HOSTILE_THROUGH: (&str, &str, &str) = (
    "./via-link",
    "../../../..",
    "./via-link/escaped-through-symlink",
);
/// Path of [`DebBuilder::hostile_size_lie`]'s truncated file.
pub const HOSTILE_SIZE_LIE: &str = "./size-lie";

/// Compression of a member tarball.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// `.tar.xz` (Debian's default).
    Xz,
    /// `.tar.zst` (Ubuntu's default).
    Zstd,
    /// `.tar.gz`.
    Gzip,
    /// plain `.tar`.
    None,
}

impl Compression {
    fn suffix(self) -> &'static str {
        match self {
            Compression::Xz => ".xz",
            Compression::Zstd => ".zst",
            Compression::Gzip => ".gz",
            Compression::None => "",
        }
    }

    /// Compresses `data` deterministically.
    pub fn compress(self, data: &[u8]) -> io::Result<Vec<u8>> {
        match self {
            Compression::Xz => {
                let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
                e.write_all(data)?;
                e.finish()
            }
            Compression::Zstd => zstd::encode_all(data, 3),
            Compression::Gzip => {
                let mut e = flate2::GzBuilder::new()
                    .mtime(0)
                    .write(Vec::new(), flate2::Compression::default());
                e.write_all(data)?;
                e.finish()
            }
            Compression::None => Ok(data.to_vec()),
        }
    }
}

/// The kind of a tar entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file with its bytes.
    File(Vec<u8>),
    /// A directory.
    Dir,
    /// A symbolic link to the target.
    Symlink(String),
    /// A hard link to an earlier entry (archive path).
    Hardlink(String),
    /// A character device (major, minor).
    CharDevice(u32, u32),
}

/// One tar entry, written exactly as given (no path checks: this is how hostile entries are
/// made).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    /// Archive path, e.g. `./usr/bin/x` (a trailing `/` is added to directories).
    pub path: String,
    /// What it is.
    pub kind: EntryKind,
    /// Permission bits.
    pub mode: u32,
    /// A size to put in the header instead of the real one; the archive is then cut short
    /// after this entry's real bytes.
    pub declared_size: Option<u64>,
}

/// A built `.deb` and the metadata a Packages index needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deb {
    /// `Package`.
    pub package: String,
    /// `Version`.
    pub version: String,
    /// `Architecture`.
    pub architecture: String,
    /// Source package name (from `Source`, else the package name).
    pub source: String,
    /// The control stanza (no trailing newline), as in the archive's `control` file.
    pub control: String,
    /// The `.deb` bytes.
    pub bytes: Vec<u8>,
}

impl Deb {
    /// `name_version_arch.deb`, the epoch dropped as Debian's pool does.
    pub fn file_name(&self) -> String {
        let v = self
            .version
            .split_once(':')
            .map_or(self.version.as_str(), |x| x.1);
        format!("{}_{v}_{}.deb", self.package, self.architecture)
    }

    /// SHA-256 of the bytes, hex.
    pub fn sha256_hex(&self) -> String {
        hex::encode(Sha256::digest(&self.bytes))
    }
}

/// Writes a `.deb`. Paths may be given as `/usr/bin/x`, `usr/bin/x` or `./usr/bin/x`; parent
/// directories are added automatically. Entries keep the order they were added in.
#[derive(Debug, Clone)]
pub struct DebBuilder {
    fields: Vec<(String, String)>,
    entries: Vec<RawEntry>,
    conffiles: Vec<String>,
    scripts: Vec<(String, String)>,
    control_compression: Compression,
    data_compression: Compression,
    mtime: u64,
}

/// `./`-prefixed archive path without a trailing slash.
fn archive_path(p: &str) -> String {
    let p = p
        .trim_start_matches("./")
        .trim_start_matches('/')
        .trim_end_matches('/');
    if p.is_empty() {
        ".".into()
    } else {
        format!("./{p}")
    }
}

impl DebBuilder {
    /// A package with the mandatory fields; Maintainer and Description get defaults.
    pub fn new(package: &str, version: &str, arch: &str) -> Self {
        DebBuilder {
            fields: vec![
                ("Package".into(), package.into()),
                ("Version".into(), version.into()),
                ("Architecture".into(), arch.into()),
                (
                    "Maintainer".into(),
                    "himg tests <tests@test.invalid>".into(),
                ),
            ],
            entries: Vec::new(),
            conffiles: Vec::new(),
            scripts: Vec::new(),
            control_compression: Compression::Xz,
            data_compression: Compression::Xz,
            mtime: DEFAULT_MTIME,
        }
    }

    /// Sets (or replaces) a control field.
    pub fn field(mut self, name: &str, value: &str) -> Self {
        match self
            .fields
            .iter_mut()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
        {
            Some((_, v)) => *v = value.to_string(),
            None => self.fields.push((name.to_string(), value.to_string())),
        }
        self
    }

    /// `Depends`.
    pub fn depends(self, v: &str) -> Self {
        self.field("Depends", v)
    }
    /// `Pre-Depends`.
    pub fn pre_depends(self, v: &str) -> Self {
        self.field("Pre-Depends", v)
    }
    /// `Provides`.
    pub fn provides(self, v: &str) -> Self {
        self.field("Provides", v)
    }
    /// `Conflicts`.
    pub fn conflicts(self, v: &str) -> Self {
        self.field("Conflicts", v)
    }
    /// `Essential: yes` (or removes it).
    pub fn essential(self, yes: bool) -> Self {
        if yes {
            self.field("Essential", "yes")
        } else {
            let mut s = self;
            s.fields
                .retain(|(k, _)| !k.eq_ignore_ascii_case("Essential"));
            s
        }
    }
    /// `Multi-Arch` (`same`, `foreign`, `allowed`).
    pub fn multi_arch(self, v: &str) -> Self {
        self.field("Multi-Arch", v)
    }
    /// `Source`, e.g. `glibc` or `glibc (2.36-9)` for a binNMU.
    pub fn source(self, v: &str) -> Self {
        self.field("Source", v)
    }
    /// `Description` (first line; continuation lines are indented for you).
    pub fn description(self, v: &str) -> Self {
        let mut lines = v.lines();
        let mut text = lines.next().unwrap_or("").to_string();
        for l in lines {
            text.push_str("\n ");
            text.push_str(if l.trim().is_empty() { "." } else { l });
        }
        self.field("Description", &text)
    }

    /// Compression of `control.tar`.
    pub fn control_compression(mut self, c: Compression) -> Self {
        self.control_compression = c;
        self
    }
    /// Compression of `data.tar`.
    pub fn data_compression(mut self, c: Compression) -> Self {
        self.data_compression = c;
        self
    }
    /// mtime of every entry.
    pub fn mtime(mut self, t: u64) -> Self {
        self.mtime = t;
        self
    }

    fn ensure_parents(&mut self, path: &str) {
        let mut parents = Vec::new();
        let mut cur = path;
        while let Some((parent, _)) = cur.rsplit_once('/') {
            if parent == "." || parent.is_empty() {
                break;
            }
            parents.push(parent.to_string());
            cur = parent;
        }
        if !self.entries.iter().any(|e| e.path == ".") {
            self.entries.push(RawEntry {
                path: ".".into(),
                kind: EntryKind::Dir,
                mode: 0o755,
                declared_size: None,
            });
        }
        for p in parents.into_iter().rev() {
            if !self.entries.iter().any(|e| e.path == p) {
                self.entries.push(RawEntry {
                    path: p,
                    kind: EntryKind::Dir,
                    mode: 0o755,
                    declared_size: None,
                });
            }
        }
    }

    fn push(mut self, path: &str, kind: EntryKind, mode: u32) -> Self {
        let path = archive_path(path);
        self.ensure_parents(&path);
        self.entries.push(RawEntry {
            path,
            kind,
            mode,
            declared_size: None,
        });
        self
    }

    /// A regular file.
    pub fn file(self, path: &str, bytes: &[u8], mode: u32) -> Self {
        self.push(path, EntryKind::File(bytes.to_vec()), mode)
    }
    /// A directory.
    pub fn dir(self, path: &str, mode: u32) -> Self {
        self.push(path, EntryKind::Dir, mode)
    }
    /// A symbolic link (target written as given).
    pub fn symlink(self, path: &str, target: &str) -> Self {
        self.push(path, EntryKind::Symlink(target.to_string()), 0o777)
    }
    /// A hard link to an earlier file (given as a package path, e.g. `/usr/bin/x`).
    pub fn hardlink(self, path: &str, target: &str) -> Self {
        let target = archive_path(target);
        self.push(path, EntryKind::Hardlink(target), 0o644)
    }
    /// A conffile: a file under `/etc` listed in `conffiles`.
    pub fn conffile(mut self, path: &str, bytes: &[u8]) -> Self {
        self.conffiles
            .push(format!("/{}", archive_path(path).trim_start_matches("./")));
        self.file(path, bytes, 0o644)
    }
    /// A maintainer script (`preinst`, `postinst`, …) in control.tar, mode 0755.
    pub fn script(mut self, name: &str, text: &str) -> Self {
        self.scripts.push((name.to_string(), text.to_string()));
        self
    }
    /// An entry written exactly as given.
    pub fn raw(mut self, entry: RawEntry) -> Self {
        self.entries.push(entry);
        self
    }

    /// HOSTILE: a regular file at [`HOSTILE_PARENT_PATH`] (`./../../escape`).
    pub fn hostile_parent_escape(self) -> Self {
        self.raw(RawEntry {
            path: HOSTILE_PARENT_PATH.into(),
            kind: EntryKind::File(b"escaped via ..\n".to_vec()),
            mode: 0o644,
            declared_size: None,
        })
    }
    /// HOSTILE: a symlink [`HOSTILE_SYMLINK`] whose absolute target climbs out with `../..`.
    pub fn hostile_symlink_escape(self) -> Self {
        self.raw(RawEntry {
            path: HOSTILE_SYMLINK.0.into(),
            kind: EntryKind::Symlink(HOSTILE_SYMLINK.1.into()),
            mode: 0o777,
            declared_size: None,
        })
    }
    /// HOSTILE: a hard link [`HOSTILE_HARDLINK`] to a path outside the archive.
    pub fn hostile_hardlink_outside(self) -> Self {
        self.raw(RawEntry {
            path: HOSTILE_HARDLINK.0.into(),
            kind: EntryKind::Hardlink(HOSTILE_HARDLINK.1.into()),
            mode: 0o644,
            declared_size: None,
        })
    }
    /// HOSTILE: a character device node [`HOSTILE_DEVICE`] (1:3, like /dev/null).
    pub fn hostile_char_device(self) -> Self {
        self.raw(RawEntry {
            path: HOSTILE_DEVICE.into(),
            kind: EntryKind::CharDevice(1, 3),
            mode: 0o666,
            declared_size: None,
        })
    }
    /// HOSTILE: a symlink pointing up (`./via-link -> ../../../..`), then a file written
    /// through it ([`HOSTILE_THROUGH`]).
    pub fn hostile_through_symlink(self) -> Self {
        self.raw(RawEntry {
            path: HOSTILE_THROUGH.0.into(),
            kind: EntryKind::Symlink(HOSTILE_THROUGH.1.into()),
            mode: 0o777,
            declared_size: None,
        })
        .raw(RawEntry {
            path: HOSTILE_THROUGH.2.into(),
            kind: EntryKind::File(b"escaped through a symlink\n".to_vec()),
            mode: 0o644,
            declared_size: None,
        })
    }
    /// HOSTILE: a file [`HOSTILE_SIZE_LIE`] whose header claims 1 MiB but whose archive ends
    /// after 16 bytes (a truncated data.tar).
    pub fn hostile_size_lie(self) -> Self {
        self.raw(RawEntry {
            path: HOSTILE_SIZE_LIE.into(),
            kind: EntryKind::File(b"0123456789abcdef".to_vec()),
            mode: 0o644,
            declared_size: Some(1 << 20),
        })
    }

    fn control_text(&self, installed_kib: u64) -> String {
        let mut fields = self.fields.clone();
        if !fields
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("Installed-Size"))
        {
            fields.push(("Installed-Size".into(), installed_kib.to_string()));
        }
        if !fields
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("Description"))
        {
            let name = fields.first().map(|x| x.1.clone()).unwrap_or_default();
            fields.push(("Description".into(), format!("test package {name}")));
        }
        // Debian's order for the common fields, the rest as added, Description last.
        const ORDER: [&str; 14] = [
            "Package",
            "Source",
            "Version",
            "Architecture",
            "Maintainer",
            "Installed-Size",
            "Essential",
            "Multi-Arch",
            "Pre-Depends",
            "Depends",
            "Conflicts",
            "Provides",
            "Section",
            "Priority",
        ];
        let rank = |k: &str| {
            if k.eq_ignore_ascii_case("Description") {
                return ORDER.len() + 1;
            }
            ORDER
                .iter()
                .position(|o| o.eq_ignore_ascii_case(k))
                .unwrap_or(ORDER.len())
        };
        fields.sort_by_key(|(k, _)| rank(k));
        fields
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Writes the `.deb`.
    pub fn build(&self) -> io::Result<Deb> {
        let get = |k: &str| {
            self.fields
                .iter()
                .find(|(f, _)| f.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let package = get("Package");
        let installed: u64 = self
            .entries
            .iter()
            .map(|e| match &e.kind {
                EntryKind::File(b) => (b.len() as u64).div_ceil(1024),
                _ => 1,
            })
            .sum();
        let control = self.control_text(installed);

        let mut data_tar = Vec::new();
        let mut truncated = false;
        for e in &self.entries {
            write_entry(&mut data_tar, e, self.mtime)?;
            if e.declared_size.is_some() {
                truncated = true;
                break;
            }
        }
        if !truncated {
            data_tar.extend_from_slice(&[0u8; 1024]);
        }

        let mut md5sums = String::new();
        for e in &self.entries {
            if let EntryKind::File(b) = &e.kind {
                let rel = e.path.trim_start_matches("./");
                if !self
                    .conffiles
                    .iter()
                    .any(|c| c.trim_start_matches('/') == rel)
                {
                    md5sums.push_str(&format!("{}  {rel}\n", hex::encode(Md5::digest(b))));
                }
            }
        }
        let mut control_tar = Vec::new();
        write_entry(
            &mut control_tar,
            &RawEntry {
                path: ".".into(),
                kind: EntryKind::Dir,
                mode: 0o755,
                declared_size: None,
            },
            self.mtime,
        )?;
        let mut cfile = |name: &str, bytes: Vec<u8>, mode: u32| {
            write_entry(
                &mut control_tar,
                &RawEntry {
                    path: format!("./{name}"),
                    kind: EntryKind::File(bytes),
                    mode,
                    declared_size: None,
                },
                self.mtime,
            )
        };
        cfile("control", format!("{control}\n").into_bytes(), 0o644)?;
        if !md5sums.is_empty() {
            cfile("md5sums", md5sums.into_bytes(), 0o644)?;
        }
        if !self.conffiles.is_empty() {
            let mut c = self.conffiles.join("\n");
            c.push('\n');
            cfile("conffiles", c.into_bytes(), 0o644)?;
        }
        for (name, text) in &self.scripts {
            cfile(name, text.clone().into_bytes(), 0o755)?;
        }
        control_tar.extend_from_slice(&[0u8; 1024]);

        let members: [(String, Vec<u8>); 3] = [
            ("debian-binary".into(), b"2.0\n".to_vec()),
            (
                format!("control.tar{}", self.control_compression.suffix()),
                self.control_compression.compress(&control_tar)?,
            ),
            (
                format!("data.tar{}", self.data_compression.suffix()),
                self.data_compression.compress(&data_tar)?,
            ),
        ];
        let mut out = Vec::new();
        {
            let mut ar = ar::Builder::new(&mut out);
            for (name, bytes) in &members {
                let mut h = ar::Header::new(name.as_bytes().to_vec(), bytes.len() as u64);
                h.set_mode(0o100644);
                ar.append(&h, &bytes[..])?;
            }
        }
        let source = get("Source");
        let source = source
            .split_whitespace()
            .next()
            .unwrap_or(&package)
            .to_string();
        Ok(Deb {
            version: get("Version"),
            architecture: get("Architecture"),
            source: if source.is_empty() {
                package.clone()
            } else {
                source
            },
            package,
            control,
            bytes: out,
        })
    }
}

/// Appends one tar entry (GNU long-name/long-link records when needed) to `out`.
pub fn write_entry(out: &mut Vec<u8>, e: &RawEntry, mtime: u64) -> io::Result<()> {
    let mut name = e.path.clone();
    if e.kind == EntryKind::Dir && !name.ends_with('/') {
        name.push('/');
    }
    let (link, ty, data): (Option<&str>, tar::EntryType, &[u8]) = match &e.kind {
        EntryKind::File(b) => (None, tar::EntryType::Regular, b),
        EntryKind::Dir => (None, tar::EntryType::Directory, &[]),
        EntryKind::Symlink(t) => (Some(t), tar::EntryType::Symlink, &[]),
        EntryKind::Hardlink(t) => (Some(t), tar::EntryType::Link, &[]),
        EntryKind::CharDevice(..) => (None, tar::EntryType::Char, &[]),
    };
    if name.len() > 100 {
        long_record(out, b'L', name.as_bytes())?;
    }
    if let Some(l) = link
        && l.len() > 100
    {
        long_record(out, b'K', l.as_bytes())?;
    }
    let mut h = tar::Header::new_gnu();
    {
        let old = h.as_old_mut();
        let n = name.len().min(100);
        old.name[..n].copy_from_slice(&name.as_bytes()[..n]);
        if let Some(l) = link {
            let n = l.len().min(100);
            old.linkname[..n].copy_from_slice(&l.as_bytes()[..n]);
        }
    }
    h.set_entry_type(ty);
    h.set_mode(e.mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime);
    h.set_username("root")?;
    h.set_groupname("root")?;
    h.set_size(e.declared_size.unwrap_or(data.len() as u64));
    if let EntryKind::CharDevice(major, minor) = e.kind {
        h.set_device_major(major)?;
        h.set_device_minor(minor)?;
    }
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    pad(out, data.len());
    Ok(())
}

fn long_record(out: &mut Vec<u8>, ty: u8, value: &[u8]) -> io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
    h.set_entry_type(tar::EntryType::new(ty));
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(value.len() as u64 + 1);
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(value);
    out.push(0);
    pad(out, value.len() + 1);
    Ok(())
}

fn pad(out: &mut Vec<u8>, len: usize) {
    let rem = len % 512;
    if rem != 0 {
        out.extend(std::iter::repeat_n(0u8, 512 - rem));
    }
}
