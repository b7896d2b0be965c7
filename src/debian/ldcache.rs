//! `/etc/ld.so.cache` as glibc's `ldconfig` writes it (format `glibc-ld.so.cache1.1`, glibc ≥ 2.32),
//! generated from the image's entries instead of running `ldconfig` (libc-bin's trigger) in the image.
//!
//! # What is reproduced
//! - **Directories** ([`search_dirs`]): `/etc/ld.so.conf` of the image with its `include` globs
//!   (matches sorted bytewise, nested includes followed), then Debian's built-in directories
//!   `/lib/<triplet>`, `/usr/lib/<triplet>`, `/lib`, `/usr/lib`. Directories that do not exist are
//!   skipped; a directory reached again through a symlink (merged /usr: `/lib/x86_64-linux-gnu` *is*
//!   `/usr/lib/x86_64-linux-gnu`) is scanned once, under the first name — as `ldconfig` does by inode.
//! - **Libraries** ([`scan_libs`]): names `lib*.so*`, `ld-*.so*`, `ld.so.*`, `ld64.so.*`; regular files,
//!   hardlinks, and symlinks that resolve (inside the image) to regular files; ELF shared objects
//!   (`ET_DYN`) with a dynamic segment and string table, of the image's machine. The key is `DT_SONAME`
//!   (or the file name), except for a symlink named after the soname or a `.so` development link whose
//!   name is a prefix of the soname: then the link's own name. The value is `<dir as named>/<key>`.
//!   Flags: x86-64 `0x0303` (`libc6,x86-64`), x32 `0x0803`, aarch64 `0x0a03` (`libc6,AArch64`); i386
//!   objects on x86-64 get `0x0001`, or `0x0003` when they need `libc.so.6`/`libm.so.6` or use
//!   `/lib/ld-linux.so.2`.
//! - **Order** ([`ld_so_cache`]): `ldconfig`'s list order — by `_dl_cache_libcmp` on the key, descending,
//!   then flags descending, then hwcap; ties keep discovery order (directory order).
//! - **Bytes**: header, entries, the string table with glibc's tail merging (a string that ends another
//!   shares its bytes), 4-byte alignment, and the extension directory with the generator string
//!   ([`debian_generator`] gives Debian's text for a libc6 version).
//!
//! Not reproduced: `glibc-hwcaps/` and legacy hwcap subdirectories (Debian's base packages ship none),
//! `dir=TYPE` flags in `ld.so.conf`, the old (`ld.so-1.7.0`) format, and the auxiliary cache
//! (`/var/cache/ldconfig/aux-cache`, only a speed-up for `ldconfig` itself). `ldconfig` also creates
//! missing soname symlinks; packages ship them, so none are generated. Byte comparison of the key strings
//! follows x86's signed `char` (only non-ASCII sonames would differ on aarch64).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use super::elf::{self, ElfError};
use super::unpack::{ContentSource, DebEntry, DebEntryKind};
use crate::image::links::{self, LinkTree, Node};

/// `FLAG_ELF`: an ELF object of unknown libc.
pub const FLAG_ELF: i32 = 0x0001;
/// `FLAG_ELF_LIBC5`.
pub const FLAG_ELF_LIBC5: i32 = 0x0002;
/// `FLAG_ELF_LIBC6`.
pub const FLAG_ELF_LIBC6: i32 = 0x0003;
/// `FLAG_X8664_LIB64`.
pub const FLAG_X8664_LIB64: i32 = 0x0300;
/// `FLAG_X8664_LIBX32`.
pub const FLAG_X8664_LIBX32: i32 = 0x0800;
/// `FLAG_AARCH64_LIB64`.
pub const FLAG_AARCH64_LIB64: i32 = 0x0a00;

const CACHE_MAGIC_NEW: &[u8] = b"glibc-ld.so.cache1.1";
const EXTENSION_MAGIC: u32 = 0xEAA4_2174;
const EXTENSION_TAG_GENERATOR: u32 = 0;
/// `cache_file_new_flags_endian_little`.
const FLAGS_ENDIAN_LITTLE: u8 = 2;
const HEADER_SIZE: usize = 48;
/// Configuration files larger than this are ignored.
const MAX_CONF_BYTES: u64 = 1 << 20;
const ENTRY_SIZE: usize = 24;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum LdCacheError {
    #[error("unsupported architecture `{0}` (supported: amd64, arm64)")]
    UnsupportedArch(String),
    #[error("cannot read `{path}`")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path}` is not an ELF file the cache can use")]
    Elf {
        path: String,
        #[source]
        source: ElfError,
    },
}

/// The machine the image is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LdArch {
    X86_64,
    Aarch64,
}

impl LdArch {
    /// From a Debian architecture name (`amd64`, `arm64`).
    pub fn from_debian(arch: &str) -> Result<Self, LdCacheError> {
        match arch {
            "amd64" => Ok(Self::X86_64),
            "arm64" => Ok(Self::Aarch64),
            other => Err(LdCacheError::UnsupportedArch(other.to_owned())),
        }
    }

    /// The multiarch triplet.
    pub fn triplet(self) -> &'static str {
        match self {
            Self::X86_64 => "x86_64-linux-gnu",
            Self::Aarch64 => "aarch64-linux-gnu",
        }
    }
}

/// One cache entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibEntry {
    /// The key: the soname (or link name, see the module doc).
    pub soname: String,
    /// The value: `<directory>/<soname>`.
    pub path: String,
    /// `FLAG_*` bits.
    pub flags: i32,
    /// Legacy hwcap bits (0 for everything this module scans).
    pub hwcap: u64,
}

/// glibc's `_dl_cache_libcmp`: digit runs compare numerically, other bytes as (signed) chars.
pub fn dl_cache_libcmp(a: &str, b: &str) -> i32 {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    let at = |s: &[u8], k: usize| -> i32 { s.get(k).map_or(0, |c| i32::from(*c as i8)) };
    let digit = |s: &[u8], k: usize| s.get(k).is_some_and(u8::is_ascii_digit);
    while i < a.len() {
        if digit(a, i) {
            if digit(b, j) {
                let mut v1: i32 = 0;
                let mut v2: i32 = 0;
                while digit(a, i) {
                    v1 = v1.wrapping_mul(10).wrapping_add(i32::from(a[i] - b'0'));
                    i += 1;
                }
                while digit(b, j) {
                    v2 = v2.wrapping_mul(10).wrapping_add(i32::from(b[j] - b'0'));
                    j += 1;
                }
                if v1 != v2 {
                    return v1.wrapping_sub(v2);
                }
            } else {
                return 1;
            }
        } else if digit(b, j) {
            return -1;
        } else if at(a, i) != at(b, j) {
            return at(a, i) - at(b, j);
        } else {
            i += 1;
            j += 1;
        }
    }
    at(a, i) - at(b, j)
}

/// `ldconfig`'s `compare(e1, e2)` for entries without glibc-hwcaps.
fn compare(e1: &LibEntry, e2: &LibEntry) -> std::cmp::Ordering {
    let res = dl_cache_libcmp(&e2.soname, &e1.soname);
    if res != 0 {
        return res.cmp(&0);
    }
    if e1.flags != e2.flags {
        return e2.flags.cmp(&e1.flags);
    }
    let (b1, b2) = (e1.hwcap.count_ones(), e2.hwcap.count_ones());
    if b1 != b2 {
        return b2.cmp(&b1);
    }
    e2.hwcap.cmp(&e1.hwcap)
}

/// The generator string Debian's `ldconfig` writes, for a libc6 package version such as
/// `2.36-9+deb12u14`.
pub fn debian_generator(libc6_version: &str) -> String {
    let upstream = libc6_version
        .split_once(':')
        .map_or(libc6_version, |(_, v)| v);
    let upstream = upstream.rsplit_once('-').map_or(upstream, |(u, _)| u);
    let upstream = upstream.split_once('+').map_or(upstream, |(u, _)| u);
    format!("ldconfig (Debian GLIBC {libc6_version}) stable release version {upstream}")
}

/// The cache bytes for `libs` (given in discovery order), without a generator extension.
pub fn ld_so_cache(libs: &[LibEntry]) -> Vec<u8> {
    ld_so_cache_with_generator(libs, None)
}

/// The cache bytes for `libs` (given in discovery order); `generator` is recorded in the extension
/// directory as `ldconfig` does (`ldconfig -p` prints it as "Cache generated by").
pub fn ld_so_cache_with_generator(libs: &[LibEntry], generator: Option<&str>) -> Vec<u8> {
    let mut sorted: Vec<&LibEntry> = libs.iter().collect();
    sorted.sort_by(|a, b| compare(a, b)); // stable: ties keep discovery order

    // String table with tail merging (glibc elf/stringtable.c).
    let mut strings: BTreeSet<&str> = BTreeSet::new();
    for e in &sorted {
        strings.insert(&e.path);
        strings.insert(&e.soname);
    }
    let mut order: Vec<&str> = strings.into_iter().collect();
    order.sort_by(|a, b| tail_cmp(a.as_bytes(), b.as_bytes()));
    let mut offsets: BTreeMap<&str, u32> = BTreeMap::new();
    let mut table: Vec<u8> = Vec::new();
    let mut prev: Option<(&str, u32)> = None;
    for s in order {
        let off = match prev {
            Some((p, poff)) if p.len() >= s.len() && p.as_bytes().ends_with(s.as_bytes()) => {
                poff + (p.len() - s.len()) as u32
            }
            Some((p, poff)) => poff + p.len() as u32 + 1,
            None => 0,
        };
        if off as usize == table.len() {
            table.extend_from_slice(s.as_bytes());
            table.push(0);
        }
        offsets.insert(s, off);
        prev = Some((s, off));
    }

    let entries_end = HEADER_SIZE + ENTRY_SIZE * sorted.len();
    let str_offset = entries_end as u32;
    let strings_end = entries_end + table.len();
    let extension_offset = if generator.is_some() {
        strings_end.div_ceil(4) * 4
    } else {
        0
    };

    let mut out = Vec::with_capacity(strings_end + 128);
    out.extend_from_slice(CACHE_MAGIC_NEW);
    out.extend_from_slice(&(sorted.len() as u32).to_le_bytes());
    out.extend_from_slice(&(table.len() as u32).to_le_bytes());
    out.push(FLAGS_ENDIAN_LITTLE);
    out.extend_from_slice(&[0; 3]);
    out.extend_from_slice(&(extension_offset as u32).to_le_bytes());
    out.extend_from_slice(&[0; 12]);
    for e in &sorted {
        out.extend_from_slice(&e.flags.to_le_bytes());
        out.extend_from_slice(&(str_offset + offsets[e.soname.as_str()]).to_le_bytes());
        out.extend_from_slice(&(str_offset + offsets[e.path.as_str()]).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes()); // osversion_unused
        out.extend_from_slice(&e.hwcap.to_le_bytes());
    }
    out.extend_from_slice(&table);
    if let Some(generator) = generator {
        out.resize(extension_offset, 0);
        let dir_size = 8 + 16;
        out.extend_from_slice(&EXTENSION_MAGIC.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&EXTENSION_TAG_GENERATOR.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&((extension_offset + dir_size) as u32).to_le_bytes());
        out.extend_from_slice(&(generator.len() as u32).to_le_bytes());
        out.extend_from_slice(generator.as_bytes());
    }
    out
}

/// glibc's `tail_cmp` order: reversed strings in descending byte order; when one string ends the
/// other, the longer comes first (so the shorter can share its tail).
fn tail_cmp(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let mut i = a.len();
    let mut j = b.len();
    while i > 0 && j > 0 {
        i -= 1;
        j -= 1;
        match b[j].cmp(&a[i]) {
            std::cmp::Ordering::Equal => {}
            o => return o,
        }
    }
    // The remaining lengths: the longer string (more left over) sorts first.
    j.cmp(&i)
}

/// A read-only view of an image's entries that resolves symlinks inside the image.
pub struct ImageView<'a> {
    by_path: BTreeMap<&'a str, &'a DebEntry>,
    children: BTreeMap<&'a str, Vec<&'a str>>,
}

impl<'a> ImageView<'a> {
    /// Index `entries` (later entries with the same path win, as in a layer stack).
    pub fn new(entries: &'a [DebEntry]) -> Self {
        let mut by_path = BTreeMap::new();
        for e in entries {
            by_path.insert(e.path.as_str(), e);
        }
        let mut children: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for p in by_path.keys() {
            if let Some(idx) = p.rfind('/') {
                let parent = if idx == 0 { "/" } else { &p[..idx] };
                children.entry(parent).or_default().push(&p[idx + 1..]);
            }
        }
        Self { by_path, children }
    }

    /// The entry at `path` exactly (no resolution).
    pub fn get(&self, path: &str) -> Option<&'a DebEntry> {
        self.by_path.get(path).copied()
    }

    /// Resolve `path` to its canonical form, following symlinks in every component (also the last when
    /// `follow_last`). `None` if a component is missing or there are more than 40 links.
    pub fn resolve(&self, path: &str, follow_last: bool) -> Option<String> {
        links::resolve(path, follow_last, self)
            .map(|components| format!("/{}", components.join("/")))
    }

    /// Names inside the directory at canonical path `dir`, sorted.
    pub fn list(&self, dir: &str) -> &[&'a str] {
        self.children.get(dir).map_or(&[], Vec::as_slice)
    }

    /// Read a whole regular file of at most `MAX_CONF_BYTES` (following symlinks and hardlinks).
    pub fn read_file(&self, path: &str, src: &dyn ContentSource) -> Option<Vec<u8>> {
        let canon = self.resolve(path, true)?;
        let (content, size) = self.file_content(&canon)?;
        if size > MAX_CONF_BYTES {
            return None;
        }
        src.read_range(content, 0, usize::try_from(size).ok()?).ok()
    }

    /// Content id and size of the regular file at canonical `path` (a hardlink gives its target's).
    fn file_content(&self, path: &str) -> Option<(&'a str, u64)> {
        match &self.get(path)?.kind {
            DebEntryKind::File { size, content } => Some((content.as_str(), *size)),
            DebEntryKind::Hardlink { target } => match &self.get(target)?.kind {
                DebEntryKind::File { size, content } => Some((content.as_str(), *size)),
                _ => None,
            },
            _ => None,
        }
    }
}

/// The entries as the one symlink resolver walks them (keys without the leading slash).
impl LinkTree for ImageView<'_> {
    fn node(&self, key: &str) -> Option<Node<'_>> {
        self.get(&format!("/{key}")).map(|e| match &e.kind {
            DebEntryKind::Dir => Node::Dir,
            DebEntryKind::Symlink { target } => Node::Symlink(Cow::Borrowed(target)),
            _ => Node::Other,
        })
    }
}

/// Debian's built-in directories, after `/etc/ld.so.conf`.
pub fn system_dirs(arch: LdArch) -> Vec<String> {
    let t = arch.triplet();
    vec![
        format!("/lib/{t}"),
        format!("/usr/lib/{t}"),
        "/lib".into(),
        "/usr/lib".into(),
    ]
}

/// The directories `ldconfig` would search in this image, in order, as named (not yet deduplicated).
pub fn search_dirs(entries: &[DebEntry], arch: LdArch, src: &dyn ContentSource) -> Vec<String> {
    let view = ImageView::new(entries);
    let mut dirs = Vec::new();
    parse_conf(&view, src, "/etc/ld.so.conf", &mut dirs, 0);
    dirs.extend(system_dirs(arch));
    dirs
}

fn parse_conf(
    view: &ImageView,
    src: &dyn ContentSource,
    file: &str,
    dirs: &mut Vec<String>,
    depth: u32,
) {
    if depth > 16 {
        return;
    }
    let Some(bytes) = view.read_file(file, src) else {
        return;
    };
    let text = String::from_utf8_lossy(&bytes);
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim_start();
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line
            .strip_prefix("include")
            .filter(|r| r.starts_with([' ', '\t']))
        {
            for pattern in rest.split([' ', '\t']).filter(|p| !p.is_empty()) {
                let pattern = if pattern.starts_with('/') {
                    pattern.to_owned()
                } else {
                    let base = file.rsplit_once('/').map_or("", |(d, _)| d);
                    format!("{base}/{pattern}")
                };
                for f in glob(view, &pattern) {
                    parse_conf(view, src, &f, dirs, depth + 1);
                }
            }
        } else if line
            .get(..5)
            .is_some_and(|w| w.eq_ignore_ascii_case("hwcap"))
            && line.get(5..).is_some_and(|r| r.starts_with([' ', '\t']))
        {
            // ignored by ldconfig too
        } else {
            let path = line.split('=').next().unwrap_or("").trim_end();
            let path = if path.len() > 1 {
                path.trim_end_matches('/')
            } else {
                path
            };
            if path.starts_with('/') {
                dirs.push(if path.is_empty() {
                    "/".into()
                } else {
                    path.to_owned()
                });
            }
        }
    }
}

/// Expand a glob whose wildcards (`*`, `?`) are in the last component only; sorted bytewise.
fn glob(view: &ImageView, pattern: &str) -> Vec<String> {
    let Some((dir, name_pat)) = pattern.rsplit_once('/') else {
        return Vec::new();
    };
    if dir.contains(['*', '?', '[']) {
        return Vec::new();
    }
    let dir = if dir.is_empty() { "/" } else { dir };
    let Some(canon) = view.resolve(dir, true) else {
        return Vec::new();
    };
    let mut out: Vec<String> = view
        .list(&canon)
        .iter()
        .filter(|n| {
            (name_pat.starts_with('.') || !n.starts_with('.'))
                && wildcard(name_pat.as_bytes(), n.as_bytes())
        })
        .map(|n| format!("{}/{n}", dir.trim_end_matches('/')))
        .collect();
    out.sort();
    out
}

fn wildcard(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => wildcard(&p[1..], s) || (!s.is_empty() && wildcard(p, &s[1..])),
        (Some(b'?'), Some(_)) => wildcard(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => wildcard(&p[1..], &s[1..]),
        _ => false,
    }
}

/// `_dl_is_dso`: the names `ldconfig` considers.
fn is_dso_name(name: &str) -> bool {
    ((name.starts_with("lib") || name.starts_with("ld-")) && name.contains(".so"))
        || name.starts_with("ld.so.")
        || name.starts_with("ld64.so.")
}

fn elf_flags(info: &elf::ElfInfo, arch: LdArch) -> Option<i32> {
    let generic = || {
        let mut flag = FLAG_ELF;
        match info.interpreter.as_deref() {
            Some("/lib/ld-linux.so.2") | Some("/lib64/ld-linux-x86-64.so.2") => {
                flag = FLAG_ELF_LIBC6
            }
            Some("/lib/ld-linux.so.1") => flag = FLAG_ELF_LIBC5,
            _ => {}
        }
        if flag == FLAG_ELF {
            for n in &info.needed {
                match n.as_str() {
                    "libc.so.6" | "libm.so.6" => {
                        flag = FLAG_ELF_LIBC6;
                        break;
                    }
                    "libc.so.5" | "libm.so.5" => {
                        flag = FLAG_ELF_LIBC5;
                        break;
                    }
                    _ => {}
                }
            }
        }
        flag
    };
    match (arch, info.machine, info.class64) {
        (LdArch::X86_64, elf::EM_X86_64, true) => Some(FLAG_X8664_LIB64 | FLAG_ELF_LIBC6),
        (LdArch::X86_64, elf::EM_X86_64, false) => Some(FLAG_X8664_LIBX32 | FLAG_ELF_LIBC6),
        (LdArch::X86_64, elf::EM_386, false) => Some(generic()),
        (LdArch::Aarch64, elf::EM_AARCH64, true) => Some(FLAG_AARCH64_LIB64 | FLAG_ELF_LIBC6),
        _ => None,
    }
}

struct DLib {
    name: String,
    soname: String,
    flag: i32,
    is_link: bool,
}

/// Find the shared libraries in `dirs` (in order; see [`search_dirs`]) the way `ldconfig` does, returning
/// cache entries in discovery order. Files that are not usable ELF objects are skipped, as `ldconfig`
/// skips them; only IO errors from `src` are reported.
pub fn scan_libs(
    entries: &[DebEntry],
    dirs: &[String],
    arch: LdArch,
    src: &dyn ContentSource,
) -> Result<Vec<LibEntry>, LdCacheError> {
    let view = ImageView::new(entries);
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    for dir in dirs {
        let Some(canon) = view.resolve(dir, true) else {
            continue;
        };
        if !matches!(view.get(&canon).map(|e| &e.kind), Some(DebEntryKind::Dir)) && canon != "/" {
            continue;
        }
        if !seen.insert(canon.clone()) {
            continue;
        }
        let mut dlibs: Vec<DLib> = Vec::new();
        for name in view.list(&canon) {
            if !is_dso_name(name) || name.ends_with(".#prelink#") || name.contains(".#prelink#.") {
                continue;
            }
            let full = format!("{}/{name}", canon.trim_end_matches('/'));
            let Some(entry) = view.get(&full) else {
                continue;
            };
            let (is_link, target) = match &entry.kind {
                DebEntryKind::Symlink { .. } => match view.resolve(&full, true) {
                    Some(t) => (true, t),
                    None => continue,
                },
                DebEntryKind::File { .. } | DebEntryKind::Hardlink { .. } => (false, full.clone()),
                _ => continue,
            };
            let Some((content, _)) = view.file_content(&target) else {
                continue;
            };
            let info = match elf::read_elf(src, content) {
                Ok(i) => i,
                Err(ElfError::Io(source)) => return Err(LdCacheError::Read { path: full, source }),
                Err(_) => continue,
            };
            if info.e_type != elf::ET_DYN {
                continue;
            }
            let Some(flag) = elf_flags(&info, arch) else {
                continue;
            };
            let mut soname = info.soname.clone().unwrap_or_else(|| (*name).to_owned());
            let mut is_link = is_link;
            if is_link && *name != soname {
                let keep = name.ends_with(".so") && soname.starts_with(*name);
                if !keep {
                    is_link = false;
                }
            }
            if is_link {
                soname = (*name).to_owned();
            }
            match dlibs.iter_mut().find(|d| d.soname == soname) {
                Some(d) => {
                    if (!is_link && d.is_link)
                        || (is_link == d.is_link && dl_cache_libcmp(&d.name, name) < 0)
                    {
                        if d.flag != flag
                            && ((d.flag == FLAG_ELF
                                && (flag == FLAG_ELF_LIBC5 || flag == FLAG_ELF_LIBC6))
                                || ((d.flag == FLAG_ELF_LIBC5 || d.flag == FLAG_ELF_LIBC6)
                                    && flag == FLAG_ELF))
                        {
                            d.flag = flag;
                        }
                        d.name = (*name).to_owned();
                        d.is_link = is_link;
                    }
                }
                None => dlibs.push(DLib {
                    name: (*name).to_owned(),
                    soname,
                    flag,
                    is_link,
                }),
            }
        }
        let dir_name = if dir.len() > 1 {
            dir.trim_end_matches('/')
        } else {
            dir.as_str()
        };
        for d in dlibs {
            out.push(LibEntry {
                path: format!("{dir_name}/{}", d.soname),
                soname: d.soname,
                flags: d.flag,
                hwcap: 0,
            });
        }
    }
    Ok(out)
}

/// Everything in one call: the directories, the scan and the cache bytes for an image.
pub fn generate_ld_so_cache(
    entries: &[DebEntry],
    arch: LdArch,
    src: &dyn ContentSource,
    generator: Option<&str>,
) -> Result<Vec<u8>, LdCacheError> {
    let dirs = search_dirs(entries, arch, src);
    let libs = scan_libs(entries, &dirs, arch, src)?;
    Ok(ld_so_cache_with_generator(&libs, generator))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libcmp() {
        assert!(dl_cache_libcmp("libc.so.10", "libc.so.9") > 0);
        assert!(dl_cache_libcmp("libz.so.1", "libutil.so.1") > 0);
        assert_eq!(dl_cache_libcmp("a1", "a01"), 0);
        assert!(dl_cache_libcmp("a1", "ab") > 0);
    }

    #[test]
    fn tail_merge() {
        let libs = vec![
            LibEntry {
                soname: "libb.so.1".into(),
                path: "/l/libb.so.1".into(),
                flags: 0x303,
                hwcap: 0,
            },
            LibEntry {
                soname: "liba.so.1".into(),
                path: "/l/liba.so.1".into(),
                flags: 0x303,
                hwcap: 0,
            },
        ];
        let bytes = ld_so_cache(&libs);
        let nlibs = u32::from_le_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]);
        let len = u32::from_le_bytes([bytes[24], bytes[25], bytes[26], bytes[27]]);
        assert_eq!(nlibs, 2);
        assert_eq!(len as usize, "/l/libb.so.1\0/l/liba.so.1\0".len());
        // libb sorts first (descending)
        let key0 = u32::from_le_bytes([bytes[52], bytes[53], bytes[54], bytes[55]]) as usize;
        assert_eq!(&bytes[key0..key0 + 9], b"libb.so.1");
    }
}
