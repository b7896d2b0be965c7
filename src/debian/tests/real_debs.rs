//! Unpacking real packages: completeness against `dpkg-deb -c`, merged /usr, modes and owners, minimize.

use std::collections::{BTreeMap, BTreeSet};

use super::super::minimize::{MinimizePolicy, minimize};
use super::super::unpack::{
    DebEntry, DebEntryKind, MERGED_USR_DIRS, UnpackOptions, map_merged_usr,
};
use super::support::*;

const ALL: [&str; 8] = [
    "libc6",
    "base-files",
    "tzdata",
    "ca-certificates",
    "python3-minimal",
    "busybox",
    "zlib1g",
    "libssl",
];

fn by_path(entries: &[DebEntry]) -> BTreeMap<&str, &DebEntry> {
    entries.iter().map(|e| (e.path.as_str(), e)).collect()
}

/// Every path `dpkg-deb -c` lists is in the unpacked entries (by its shipped path), with the same type,
/// except the merged-/usr top-level directories, which the image provides; and nothing else appears.
#[test]
fn nothing_lost_compared_with_dpkg_deb() {
    for name in ALL {
        for merged in [true, false] {
            let opts = UnpackOptions {
                merged_usr: merged,
                ..UnpackOptions::default()
            };
            let (u, sink) = unpack_real(name, &opts);
            let listing = dpkg_deb_listing(&deb_path(name));
            let ours: BTreeMap<&str, &DebEntry> =
                u.entries.iter().map(|e| (e.dpkg_path(), e)).collect();
            let mapped = by_path(&u.entries);
            let mut expected_paths = BTreeSet::new();
            for (path, kind) in &listing {
                let top = path.trim_start_matches('/');
                if merged && MERGED_USR_DIRS.contains(&top) && *kind == 'd' {
                    // `./lib/` is the directory /usr/lib; /lib itself is the image's symlink.
                    assert!(
                        !mapped.contains_key(path.as_str()),
                        "{name}: {path} must not be an entry"
                    );
                    let usr = format!("/usr{path}");
                    assert!(
                        matches!(
                            mapped.get(usr.as_str()).map(|e| &e.kind),
                            Some(DebEntryKind::Dir)
                        ),
                        "{name}: {usr}"
                    );
                    expected_paths.insert(usr);
                    continue;
                }
                let target = if merged {
                    map_merged_usr(path).unwrap_or_else(|| path.clone())
                } else {
                    path.clone()
                };
                expected_paths.insert(target.clone());
                // Files are found by their shipped path; a directory shipped twice (`./lib/x/` and
                // `./usr/lib/x/`) is one entry.
                let e = ours
                    .get(path.as_str())
                    .or_else(|| {
                        if *kind == 'd' {
                            mapped.get(target.as_str())
                        } else {
                            None
                        }
                    })
                    .unwrap_or_else(|| panic!("{name}: {path} missing (merged={merged})"));
                let ok = matches!(
                    (kind, &e.kind),
                    ('d', DebEntryKind::Dir)
                        | (
                            '-' | 'h',
                            DebEntryKind::File { .. } | DebEntryKind::Hardlink { .. }
                        )
                        | ('l', DebEntryKind::Symlink { .. })
                );
                assert!(
                    ok,
                    "{name}: {path} is {kind} in dpkg-deb but {:?} here",
                    e.kind
                );
                if let DebEntryKind::File { size, content } = &e.kind {
                    assert_eq!(
                        sink.get(content).map(|b| b.len() as u64),
                        Some(*size),
                        "{name}: {path} content"
                    );
                }
            }
            let expected = expected_paths.len();
            // Nothing synthesised, nothing extra.
            let extra: Vec<&DebEntry> = u
                .entries
                .iter()
                .filter(|e| !expected_paths.contains(&e.path))
                .collect();
            assert!(extra.is_empty(), "{name}: unexpected entries {extra:?}");
            assert_eq!(
                u.entries.len(),
                expected,
                "{name}: entry count (merged={merged})"
            );
            let sorted: Vec<&str> = u.entries.iter().map(|e| e.path.as_str()).collect();
            let mut check = sorted.clone();
            check.sort();
            assert_eq!(sorted, check, "{name}: entries not sorted");
        }
    }
}

#[test]
fn merged_usr_mapping_and_metadata() {
    let (libc, _) = unpack_real("libc6", &UnpackOptions::default());
    assert_eq!(libc.data_compression, "xz");
    let m = by_path(&libc.entries);
    let ld = m
        .get("/usr/lib64/ld-linux-x86-64.so.2")
        .expect("ld.so link mapped to /usr/lib64");
    assert_eq!(
        ld.shipped_path.as_deref(),
        Some("/lib64/ld-linux-x86-64.so.2")
    );
    assert!(
        matches!(&ld.kind, DebEntryKind::Symlink { target } if target == "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
    );
    let libc_so = m
        .get("/usr/lib/x86_64-linux-gnu/libc.so.6")
        .expect("libc.so.6");
    assert_eq!((libc_so.mode, libc_so.uid, libc_so.gid), (0o755, 0, 0));
    assert!(matches!(libc_so.kind, DebEntryKind::File { size, .. } if size > 1_000_000));
    for top in ["/lib", "/lib64", "/bin", "/sbin"] {
        assert!(!m.contains_key(top), "{top} must not be an entry");
    }
    assert_eq!(m["/usr/lib64"].shipped_path.as_deref(), Some("/lib64"));
    assert_eq!(
        m["/usr/lib"].shipped_path, None,
        "./usr/lib/ is shipped too"
    );
    assert!(libc.control.starts_with("Package: libc6\n"));
    assert!(
        libc.md5sums
            .as_deref()
            .is_some_and(|s| s.contains("lib/x86_64-linux-gnu/libc.so.6"))
    );
    assert_eq!(libc.conffiles, ["/etc/ld.so.conf.d/x86_64-linux-gnu.conf"]);
    assert!(libc.maintainer_scripts.contains(&"postinst".to_owned()));

    let (base, _) = unpack_real("base-files", &UnpackOptions::default());
    let b = by_path(&base.entries);
    let local = b.get("/var/local").expect("/var/local");
    assert_eq!(
        (local.mode, local.uid, local.gid),
        (0o2775, 0, 50),
        "setgid staff dir kept"
    );
    assert_eq!(b.get("/tmp").map(|e| e.mode), Some(0o1777));
    assert_eq!(b.get("/root").map(|e| e.mode), Some(0o700));

    let (bb, _) = unpack_real("busybox", &UnpackOptions::default());
    let busybox = by_path(&bb.entries);
    assert!(
        busybox.contains_key("/usr/bin/busybox"),
        "/bin/busybox mapped"
    );
    assert_eq!(
        busybox["/usr/bin/busybox"].shipped_path.as_deref(),
        Some("/bin/busybox")
    );

    let (py, _) = unpack_real("python3-minimal", &UnpackOptions::default());
    let p = by_path(&py.entries);
    assert!(
        matches!(&p["/usr/bin/python3"].kind, DebEntryKind::Symlink { target } if target == "python3.11")
    );
}

#[test]
fn minimize_real_packages() {
    let policy = MinimizePolicy {
        keep_docs: false,
        keep_locales: vec!["C.UTF-8".into(), "en".into()],
        paths: Default::default(),
        keep_setuid: Default::default(),
    };
    let mut total_removed = 0;
    for name in ALL {
        let (u, _) = unpack_real(name, &UnpackOptions::default());
        let before = u.entries.len();
        let docs: BTreeSet<String> = u
            .entries
            .iter()
            .filter(|e| {
                e.path
                    .strip_prefix("/usr/share/doc/")
                    .is_some_and(|r| r.split('/').count() == 2 && r.ends_with("/copyright"))
            })
            .map(|e| e.path.clone())
            .collect();
        let m = minimize(u.entries, &policy);
        let kept = by_path(&m.kept);
        for c in &docs {
            assert!(kept.contains_key(c.as_str()), "{name}: {c} must be kept");
        }
        assert!(
            !m.kept.iter().any(|e| e.path.starts_with("/usr/share/man/")),
            "{name}: man pages left"
        );
        assert!(
            !m.kept.iter().any(|e| e.path.starts_with("/usr/share/doc/")
                && !docs.contains(&e.path)
                && !matches!(e.kind, DebEntryKind::Dir)),
            "{name}: docs left"
        );
        // Every kept entry's parent is kept.
        for e in &m.kept {
            if let Some((parent, _)) = e.path.rsplit_once('/') {
                assert!(
                    parent.is_empty() || kept.contains_key(parent),
                    "{name}: {} lost its parent",
                    e.path
                );
            }
        }
        eprintln!(
            "{name}: {before} -> {} entries, {} files / {} bytes removed",
            m.kept.len(),
            m.removed_files,
            m.removed_bytes
        );
        total_removed += m.removed_bytes;
        if name == "busybox" {
            assert!(m.removed_bytes >= 36400, "busybox man page and docs");
            assert!(kept.contains_key("/usr/share/doc/busybox/copyright"));
        }
    }
    assert!(total_removed > 100_000, "only {total_removed} bytes saved");
}
