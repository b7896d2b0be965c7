//! Test support: real packages fetched once per test process, and a builder for synthetic `.deb`s.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::super::unpack::{MemorySink, UnpackOptions, UnpackedDeb, unpack_deb};

/// The packages the tests use; `libssl3t64` replaces `libssl3` on newer releases.
pub const PACKAGES: &[&str] = &[
    "libc6",
    "base-files",
    "tzdata",
    "ca-certificates",
    "python3-minimal",
    "busybox",
    "zlib1g",
];

fn libssl_name() -> &'static str {
    let out = Command::new("apt-cache")
        .args(["show", "--no-all-versions", "libssl3t64"])
        .output();
    match out {
        Ok(o) if o.status.success() && !o.stdout.is_empty() => "libssl3t64",
        _ => "libssl3",
    }
}

/// Directory holding the downloaded `.deb`s. Panics (fails the test) if `apt-get download` fails.
pub fn deb_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // One directory per test process; those of processes that have ended are removed.
        let base = std::env::temp_dir().join("himg-deb-unpack-tests");
        if let Ok(old) = std::fs::read_dir(&base) {
            for d in old.filter_map(|e| e.ok()) {
                let pid = d.file_name().to_string_lossy().into_owned();
                if !Path::new("/proc").join(&pid).exists() {
                    let _ = std::fs::remove_dir_all(d.path());
                }
            }
        }
        let dir = base.join(std::process::id().to_string());
        std::fs::create_dir_all(&dir).expect("create download dir");
        let mut names: Vec<&str> = PACKAGES.to_vec();
        names.push(libssl_name());
        let out = Command::new("apt-get")
            .arg("download")
            .args(&names)
            .current_dir(&dir)
            .output()
            .expect("run apt-get download");
        assert!(
            out.status.success(),
            "apt-get download {names:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
}

/// Path of the downloaded `.deb` for `name` (`libssl` picks whichever libssl was fetched).
pub fn deb_path(name: &str) -> PathBuf {
    let dir = deb_dir();
    let want = if name == "libssl" {
        libssl_name()
    } else {
        name
    };
    let prefix = format!("{want}_");
    let found = std::fs::read_dir(dir)
        .expect("read download dir")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|f| f.to_str())
                .is_some_and(|f| f.starts_with(&prefix) && f.ends_with(".deb"))
        });
    found.unwrap_or_else(|| panic!("{want} was not downloaded into {}", dir.display()))
}

/// Unpack a downloaded package into a fresh memory sink.
pub fn unpack_real(name: &str, opts: &UnpackOptions) -> (UnpackedDeb, MemorySink) {
    let path = deb_path(name);
    let file = std::fs::File::open(&path).expect("open .deb");
    let mut sink = MemorySink::new();
    let unpacked = unpack_deb(std::io::BufReader::new(file), name, opts, &mut sink)
        .unwrap_or_else(|e| panic!("unpack {name}: {e}"));
    (unpacked, sink)
}

/// One member of a synthetic data or control tar.
pub enum TarItem<'a> {
    File(&'a str, &'a [u8], u32),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    Char(&'a str),
    Fifo(&'a str),
    /// A header declaring `declared` bytes followed by only `data`, then the archive is cut.
    Truncated(&'a str, u64, &'a [u8]),
    /// A raw name written with no validation (for `../` and absolute names).
    RawFile(&'a [u8], &'a [u8]),
}

fn header(kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

fn set_raw_name(h: &mut tar::Header, name: &[u8]) {
    let gnu = h.as_gnu_mut().expect("gnu header");
    gnu.name = [0; 100];
    gnu.name[..name.len()].copy_from_slice(name);
    h.set_cksum();
}

/// Build a tar from items (uncompressed).
pub fn build_tar(items: &[TarItem]) -> Vec<u8> {
    use tar::EntryType as T;
    let mut b = tar::Builder::new(Vec::new());
    let mut cut: Option<(Vec<u8>, Vec<u8>)> = None;
    for item in items {
        match item {
            TarItem::File(p, data, mode) => {
                let mut h = header(T::Regular, data.len() as u64, *mode);
                b.append_data(&mut h, p, *data).expect("tar file");
            }
            TarItem::Dir(p) => {
                let mut h = header(T::Directory, 0, 0o755);
                b.append_data(&mut h, p, &[][..]).expect("tar dir");
            }
            TarItem::Symlink(p, t) => {
                let mut h = header(T::Symlink, 0, 0o777);
                b.append_link(&mut h, p, t).expect("tar symlink");
            }
            TarItem::Hardlink(p, t) => {
                let mut h = header(T::Link, 0, 0o644);
                b.append_link(&mut h, p, t).expect("tar hardlink");
            }
            TarItem::Char(p) => {
                let mut h = header(T::Char, 0, 0o600);
                h.set_device_major(1).expect("major");
                h.set_device_minor(3).expect("minor");
                b.append_data(&mut h, p, &[][..]).expect("tar char");
            }
            TarItem::Fifo(p) => {
                let mut h = header(T::Fifo, 0, 0o600);
                b.append_data(&mut h, p, &[][..]).expect("tar fifo");
            }
            TarItem::RawFile(name, data) => {
                let mut h = header(T::Regular, data.len() as u64, 0o644);
                set_raw_name(&mut h, name);
                b.append(&h, *data).expect("tar raw");
            }
            TarItem::Truncated(p, declared, data) => {
                let mut h = header(T::Regular, *declared, 0o644);
                set_raw_name(&mut h, p.as_bytes());
                cut = Some((h.as_bytes().to_vec(), data.to_vec()));
                break;
            }
        }
    }
    let mut out = b.into_inner().expect("finish tar");
    if let Some((h, data)) = cut {
        // Remove the two zero end blocks, then append the lying header and short data.
        out.truncate(out.len() - 1024);
        out.extend_from_slice(&h);
        out.extend_from_slice(&data);
    }
    out
}

/// Build a `.deb` (ar) from raw members.
pub fn build_ar(members: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut b = ar::Builder::new(Vec::new());
    for (name, data) in members {
        let h = ar::Header::new(name.as_bytes().to_vec(), data.len() as u64);
        b.append(&h, data.as_slice()).expect("ar member");
    }
    b.into_inner().expect("finish ar")
}

/// A control tar with a minimal control file for package `name`.
pub fn control_tar(name: &str) -> Vec<u8> {
    let control = format!(
        "Package: {name}\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@example.org>\nDescription: test\n"
    );
    build_tar(&[
        TarItem::Dir("./"),
        TarItem::File("./control", control.as_bytes(), 0o644),
    ])
}

/// A complete `.deb` with an uncompressed data tar built from `items`.
pub fn synthetic_deb(name: &str, items: &[TarItem]) -> Vec<u8> {
    build_ar(&[
        ("debian-binary", b"2.0\n".to_vec()),
        ("control.tar", control_tar(name)),
        ("data.tar", build_tar(items)),
    ])
}

/// Paths listed by `dpkg-deb -c` (normalised, unmapped) with their type letter (`d`, `-`, `l`, `h`).
pub fn dpkg_deb_listing(deb: &Path) -> BTreeMap<String, char> {
    let out = Command::new("dpkg-deb")
        .arg("-c")
        .arg(deb)
        .output()
        .expect("run dpkg-deb -c");
    assert!(out.status.success(), "dpkg-deb -c failed");
    let text = String::from_utf8(out.stdout).expect("utf8 listing");
    let mut map = BTreeMap::new();
    for line in text.lines() {
        // drwxr-xr-x root/root         0 2023-01-01 00:00 ./usr/   (then ` -> t` or ` link to t`)
        let mut rest = line;
        for _ in 0..5 {
            rest = rest.trim_start();
            rest = &rest[rest.find(' ').unwrap_or(rest.len())..];
        }
        let mut name = rest.trim_start();
        let kind = if line.starts_with('h') {
            'h'
        } else {
            line.chars().next().unwrap_or('?')
        };
        if kind == 'l' {
            name = name.split(" -> ").next().unwrap_or(name);
        } else if kind == 'h' {
            name = name.split(" link to ").next().unwrap_or(name);
        }
        let name = name.trim_start_matches('.').trim_end_matches('/');
        if !name.is_empty() {
            map.insert(name.to_owned(), kind);
        }
    }
    map
}

/// Write `entries` (contents from `sink`) under `root`, as a layer extractor would. Returns nothing;
/// panics on IO errors (test helper).
pub fn materialise(root: &Path, entries: &[super::super::unpack::DebEntry], sink: &MemorySink) {
    use super::super::unpack::DebEntryKind as K;
    use std::os::unix::fs::PermissionsExt;
    let mut sorted: Vec<&super::super::unpack::DebEntry> = entries.iter().collect();
    // Hardlinks after everything else, so their targets exist.
    sorted.sort_by_key(|e| (matches!(e.kind, K::Hardlink { .. }), e.path.clone()));
    let mut dir_modes = Vec::new();
    for e in sorted {
        let p = root.join(e.path.trim_start_matches('/'));
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("parent dir");
        }
        match &e.kind {
            K::Dir => {
                if std::fs::symlink_metadata(&p).is_err() {
                    std::fs::create_dir(&p).expect("dir");
                }
                dir_modes.push((p, e.mode));
            }
            K::File { content, .. } => {
                let _ = std::fs::remove_file(&p);
                std::fs::write(&p, sink.get(content).expect("content in sink"))
                    .expect("write file");
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(e.mode))
                    .expect("chmod");
            }
            K::Symlink { target } => {
                let _ = std::fs::remove_file(&p);
                std::os::unix::fs::symlink(target, &p).expect("symlink");
            }
            K::Hardlink { target } => {
                let _ = std::fs::remove_file(&p);
                std::fs::hard_link(root.join(target.trim_start_matches('/')), &p)
                    .expect("hardlink");
            }
            _ => panic!("device entries are not materialised in tests"),
        }
    }
    for (p, mode) in dir_modes {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod dir");
    }
}

/// Run a command, panic with its stderr unless it succeeds, return stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
