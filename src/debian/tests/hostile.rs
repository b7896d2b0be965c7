//! Hostile and odd synthetic packages: each is refused with its own error naming package and path.

use super::super::unpack::{
    DebEntryKind, DebError, MemorySink, UnpackOptions, UnpackedDeb, unpack_deb,
};
use super::support::TarItem::*;
use super::support::*;

fn unpack(bytes: &[u8], opts: &UnpackOptions) -> (Result<UnpackedDeb, DebError>, MemorySink) {
    let mut sink = MemorySink::new();
    let r = unpack_deb(bytes, "evil", opts, &mut sink);
    (r, sink)
}

fn refuse(items: &[TarItem]) -> DebError {
    let deb = synthetic_deb("evil", items);
    match unpack(&deb, &UnpackOptions::default()).0 {
        Ok(u) => panic!("accepted: {:?}", u.entries),
        Err(e) => e,
    }
}

fn msg_names(e: &DebError, path: &str) {
    let m = e.to_string();
    assert!(m.starts_with("evil: "), "no package in {m:?}");
    assert!(m.contains(path), "no path {path:?} in {m:?}");
}

#[test]
fn traversal_and_absolute_names() {
    let e = refuse(&[Dir("./"), RawFile(b"./usr/../../etc/passwd", b"x")]);
    assert!(
        matches!(
            e,
            DebError::UnsafePath {
                reason: "`..` component",
                ..
            }
        ),
        "{e}"
    );
    msg_names(&e, "../../etc/passwd");
    let e = refuse(&[RawFile(b"./usr/x\nPackage: forged", b"x")]);
    assert!(
        matches!(
            e,
            DebError::UnsafePath {
                reason: "line break in name",
                ..
            }
        ),
        "{e}"
    );
    let e = refuse(&[RawFile(b"/etc/passwd", b"x")]);
    assert!(
        matches!(
            e,
            DebError::UnsafePath {
                reason: "absolute path",
                ..
            }
        ),
        "{e}"
    );
    msg_names(&e, "/etc/passwd");
}

#[test]
fn symlinks() {
    let e = refuse(&[Dir("./usr/"), Symlink("./usr/x", "../../etc/shadow")]);
    assert!(matches!(e, DebError::SymlinkEscapes { .. }), "{e}");
    msg_names(&e, "/usr/x");
    // Checked after the merged-/usr mapping: /bin/x is /usr/bin/x.
    let e = refuse(&[Symlink("./bin/x", "../../../x")]);
    assert!(matches!(e, DebError::SymlinkEscapes { .. }), "{e}");
    msg_names(&e, "/usr/bin/x");
    // Absolute targets resolve inside the image root; relative ones that stay inside are fine.
    let deb = synthetic_deb(
        "evil",
        &[
            Dir("./usr/"),
            Symlink("./usr/y", "/etc/shadow"),
            Symlink("./bin/z", "../../z"),
        ],
    );
    let u = unpack(&deb, &UnpackOptions::default())
        .0
        .expect("absolute symlink accepted");
    assert!(u.entries.iter().any(|e| e.path == "/usr/y"
        && e.kind
            == DebEntryKind::Symlink {
                target: "/etc/shadow".into()
            }));
    assert!(u.entries.iter().any(|e| e.path == "/usr/bin/z"));
    // A package writing through its own symlink.
    let e = refuse(&[
        Symlink("./usr/lib/evil", "/etc"),
        File("./usr/lib/evil/passwd", b"x", 0o644),
    ]);
    assert!(matches!(e, DebError::ThroughSymlink { .. }), "{e}");
    msg_names(&e, "/usr/lib/evil/passwd");
}

#[test]
fn hardlinks() {
    let e = refuse(&[
        File("./usr/a", b"a", 0o644),
        Hardlink("./usr/h", "./etc/passwd"),
    ]);
    assert!(
        matches!(
            e,
            DebError::BadHardlink {
                reason: "target is not an earlier member of this package",
                ..
            }
        ),
        "{e}"
    );
    msg_names(&e, "/usr/h");
    let e = refuse(&[Hardlink("./usr/h", "../../etc/passwd")]);
    assert!(
        matches!(
            e,
            DebError::BadHardlink {
                reason: "`..` component",
                ..
            }
        ),
        "{e}"
    );
    let e = refuse(&[Dir("./usr/d/"), Hardlink("./usr/h", "./usr/d")]);
    assert!(
        matches!(
            e,
            DebError::BadHardlink {
                reason: "target is not a regular file",
                ..
            }
        ),
        "{e}"
    );
    // A later target is refused too (hardlinks point backwards in a tar).
    let e = refuse(&[Hardlink("./usr/h", "./usr/z"), File("./usr/z", b"z", 0o644)]);
    assert!(matches!(e, DebError::BadHardlink { .. }), "{e}");
    // Good links: the bytewise-first path of a group becomes the file.
    let deb = synthetic_deb(
        "ok",
        &[
            File("./usr/z", b"zz", 0o755),
            Hardlink("./usr/a", "./usr/z"),
            Hardlink("./usr/m", "./usr/z"),
        ],
    );
    let u = unpack(&deb, &UnpackOptions::default())
        .0
        .expect("hardlinks");
    let get = |p: &str| {
        u.entries
            .iter()
            .find(|e| e.path == p)
            .expect("entry")
            .clone()
    };
    assert!(matches!(
        get("/usr/a").kind,
        DebEntryKind::File { size: 2, .. }
    ));
    assert_eq!(get("/usr/a").mode, 0o755);
    assert_eq!(
        get("/usr/m").kind,
        DebEntryKind::Hardlink {
            target: "/usr/a".into()
        }
    );
    assert_eq!(
        get("/usr/z").kind,
        DebEntryKind::Hardlink {
            target: "/usr/a".into()
        }
    );
}

#[test]
fn devices_and_fifos() {
    let e = refuse(&[Char("./dev/null")]);
    assert!(
        matches!(
            e,
            DebError::DeviceNotAllowed {
                kind: "character device",
                ..
            }
        ),
        "{e}"
    );
    msg_names(&e, "/dev/null");
    let e = refuse(&[Fifo("./run/pipe")]);
    assert!(
        matches!(e, DebError::DeviceNotAllowed { kind: "FIFO", .. }),
        "{e}"
    );
    msg_names(&e, "/run/pipe");
    let deb = synthetic_deb("dev", &[Char("./dev/null"), Fifo("./run/pipe")]);
    let opts = UnpackOptions {
        allow_devices: true,
        ..UnpackOptions::default()
    };
    let u = unpack(&deb, &opts).0.expect("devices allowed");
    assert!(
        u.entries
            .iter()
            .any(|e| e.kind == DebEntryKind::CharDevice { major: 1, minor: 3 })
    );
    assert!(u.entries.iter().any(|e| e.kind == DebEntryKind::Fifo));
}

#[test]
fn size_lies() {
    let e = refuse(&[
        File("./usr/ok", b"fine", 0o644),
        Truncated("./usr/big", 1000, b"short"),
    ]);
    assert!(
        matches!(
            e,
            DebError::SizeMismatch {
                declared: 1000,
                actual: 5,
                ..
            }
        ),
        "{e}"
    );
    msg_names(&e, "/usr/big");
    // The ar member itself is cut short.
    let mut deb = synthetic_deb("evil", &[File("./usr/ok", b"fine", 0o644)]);
    deb.truncate(deb.len() - 2000);
    let e = unpack(&deb, &UnpackOptions::default())
        .0
        .expect_err("truncated member");
    assert!(matches!(e, DebError::MemberSize { .. }), "{e}");
    assert!(e.to_string().contains("data.tar"), "{e}");
}

#[test]
fn container_problems() {
    let data = build_tar(&[File("./usr/a", b"a", 0o644)]);
    let bad = build_ar(&[
        ("debian-binary", b"3.0\n".to_vec()),
        ("control.tar", control_tar("evil")),
        ("data.tar", data.clone()),
    ]);
    let e = unpack(&bad, &UnpackOptions::default())
        .0
        .expect_err("bad version");
    assert!(matches!(e, DebError::BadDebianBinary { .. }), "{e}");
    assert!(e.to_string().contains("3.0"), "{e}");
    let bad = build_ar(&[
        ("control.tar", control_tar("evil")),
        ("data.tar", data.clone()),
    ]);
    let e = unpack(&bad, &UnpackOptions::default())
        .0
        .expect_err("no debian-binary");
    assert!(matches!(e, DebError::BadDebianBinary { .. }), "{e}");
    let bz = build_ar(&[
        ("debian-binary", b"2.0\n".to_vec()),
        ("control.tar", control_tar("evil")),
        ("data.tar.bz2", b"BZh9".to_vec()),
    ]);
    let e = unpack(&bz, &UnpackOptions::default()).0.expect_err("bzip2");
    assert!(
        matches!(&e, DebError::UnsupportedCompression { compression, .. } if compression == "bz2"),
        "{e}"
    );
    assert!(e.to_string().contains("data.tar.bz2"), "{e}");
    let lzma = build_ar(&[
        ("debian-binary", b"2.0\n".to_vec()),
        ("control.tar.lzma", vec![0; 8]),
    ]);
    let e = unpack(&lzma, &UnpackOptions::default())
        .0
        .expect_err("lzma");
    assert!(matches!(e, DebError::UnsupportedCompression { .. }), "{e}");
    let extra = build_ar(&[
        ("debian-binary", b"2.0\n".to_vec()),
        ("control.tar", control_tar("evil")),
        ("data.tar", data.clone()),
        ("evil.sh", b"rm -rf /".to_vec()),
    ]);
    let e = unpack(&extra, &UnpackOptions::default())
        .0
        .expect_err("extra member");
    assert!(matches!(e, DebError::UnexpectedMember { .. }), "{e}");
    let nodata = build_ar(&[
        ("debian-binary", b"2.0\n".to_vec()),
        ("control.tar", control_tar("evil")),
    ]);
    let e = unpack(&nodata, &UnpackOptions::default())
        .0
        .expect_err("no data");
    assert!(
        matches!(
            e,
            DebError::MissingMember {
                member: "data.tar",
                ..
            }
        ),
        "{e}"
    );
    let e = unpack(b"not an ar archive at all", &UnpackOptions::default())
        .0
        .expect_err("garbage");
    assert!(matches!(e, DebError::Container { .. }), "{e}");
    // Members starting with `_` are ignored, as dpkg does.
    let underscore = build_ar(&[
        ("debian-binary", b"2.0\n".to_vec()),
        ("_gpgorigin", b"sig".to_vec()),
        ("control.tar", control_tar("ok")),
        ("data.tar", data),
    ]);
    unpack(&underscore, &UnpackOptions::default())
        .0
        .expect("underscore member ignored");
}

#[test]
fn duplicates_and_merged_usr_conflicts() {
    let e = refuse(&[File("./usr/a", b"1", 0o644), File("./usr/a", b"2", 0o644)]);
    assert!(
        matches!(
            e,
            DebError::DuplicatePath {
                what: "content",
                ..
            }
        ),
        "{e}"
    );
    msg_names(&e, "/usr/a");
    // /bin/x and /usr/bin/x are the same path after mapping.
    let e = refuse(&[
        File("./bin/x", b"1", 0o755),
        File("./usr/bin/x", b"2", 0o755),
    ]);
    assert!(matches!(e, DebError::DuplicatePath { .. }), "{e}");
    let e = refuse(&[File("./usr/a", b"1", 0o644), Dir("./usr/a/")]);
    assert!(
        matches!(e, DebError::DuplicatePath { what: "kinds", .. }),
        "{e}"
    );
    let deb = synthetic_deb(
        "ok",
        &[
            File("./bin/x", b"1", 0o755),
            File("./usr/bin/x", b"1", 0o755),
        ],
    );
    let u = unpack(&deb, &UnpackOptions::default())
        .0
        .expect("identical repeat");
    assert_eq!(
        u.entries.iter().filter(|e| e.path == "/usr/bin/x").count(),
        1
    );
    let e = refuse(&[Symlink("./bin", "/tmp")]);
    assert!(matches!(e, DebError::MergedUsrConflict { .. }), "{e}");
    msg_names(&e, "/bin");
    let e = refuse(&[File("./lib", b"x", 0o644)]);
    assert!(matches!(e, DebError::MergedUsrConflict { .. }), "{e}");
    // trixie's base-files ships the canonical links: dropped, the image provides them.
    let deb = synthetic_deb(
        "base-files",
        &[
            Symlink("./bin", "usr/bin"),
            Dir("./usr/"),
            Dir("./usr/bin/"),
        ],
    );
    let u = unpack(&deb, &UnpackOptions::default())
        .0
        .expect("canonical /bin link");
    assert!(!u.entries.iter().any(|e| e.path == "/bin"));
    // Without merged /usr nothing is mapped.
    let deb = synthetic_deb("ok", &[Dir("./bin/"), File("./bin/x", b"1", 0o755)]);
    let opts = UnpackOptions {
        merged_usr: false,
        ..UnpackOptions::default()
    };
    let u = unpack(&deb, &opts).0.expect("unmerged");
    assert_eq!(
        u.entries
            .iter()
            .map(|e| e.path.as_str())
            .collect::<Vec<_>>(),
        ["/bin", "/bin/x"]
    );
}

#[test]
fn compressions() {
    use std::io::Write;
    let data = build_tar(&[Dir("./"), Dir("./usr/"), File("./usr/a", b"hello", 0o644)]);
    let gz = {
        let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        w.write_all(&data).expect("gz");
        w.finish().expect("gz")
    };
    let xz = {
        let mut w = liblzma::write::XzEncoder::new(Vec::new(), 6);
        w.write_all(&data).expect("xz");
        w.finish().expect("xz")
    };
    let zst = zstd::encode_all(&data[..], 3).expect("zstd");
    for (member, bytes, name) in [
        ("data.tar.gz", gz, "gzip"),
        ("data.tar.xz", xz, "xz"),
        ("data.tar.zst", zst, "zstd"),
    ] {
        let control = zstd::encode_all(&control_tar("c")[..], 3).expect("zstd");
        let deb = build_ar(&[
            ("debian-binary", b"2.0\n".to_vec()),
            ("control.tar.zst", control),
            (member, bytes.clone()),
        ]);
        let (u, sink) = unpack(&deb, &UnpackOptions::default());
        let u = u.unwrap_or_else(|e| panic!("{member}: {e}"));
        assert_eq!(u.data_compression, name);
        assert!(u.control.starts_with("Package: c\n"));
        let DebEntryKind::File { content, .. } = &u.entries[1].kind else {
            panic!("not a file")
        };
        assert_eq!(sink.get(content), Some(&b"hello"[..]));
        // Corrupt compressed data is refused, not half-read.
        // (gzip and xz carry checksums; a zstd frame without one is only caught at its magic.)
        let mut broken = bytes.clone();
        let at = if name == "zstd" { 0 } else { broken.len() / 2 };
        broken[at] ^= 0xff;
        let deb = build_ar(&[
            ("debian-binary", b"2.0\n".to_vec()),
            ("control.tar", control_tar("c")),
            (member, broken),
        ]);
        assert!(
            unpack(&deb, &UnpackOptions::default()).0.is_err(),
            "{member}: corruption accepted"
        );
    }
}

/// The unpacker touches no filesystem: it has no path parameter and no file IO in its source.
#[test]
fn unpacker_does_no_file_io() {
    let src = include_str!("../unpack.rs");
    for needle in [
        "std::fs",
        "File::",
        "OpenOptions",
        "create_dir",
        "set_permissions",
    ] {
        assert!(!src.contains(needle), "unpack.rs uses {needle}");
    }
}

/// `himg why` reads only the control file, with the same container checks as unpacking.
#[test]
fn control_of_deb_reads_the_control_file_and_refuses_what_unpacking_refuses() {
    use super::super::unpack::control_of_deb;
    let deb = synthetic_deb("evil", &[Dir("./")]);
    let control = control_of_deb(deb.as_slice(), "evil").expect("control");
    assert!(control.contains("Package: evil"), "{control}");

    let bad_version = build_ar(&[
        ("debian-binary", b"3.0\n".to_vec()),
        ("control.tar", control_tar("evil")),
    ]);
    let e = control_of_deb(bad_version.as_slice(), "evil").unwrap_err();
    assert!(matches!(e, DebError::BadDebianBinary { .. }), "{e}");

    let bz2 = build_ar(&[
        ("debian-binary", b"2.0\n".to_vec()),
        ("control.tar.bz2", control_tar("evil")),
    ]);
    let e = control_of_deb(bz2.as_slice(), "evil").unwrap_err();
    assert!(matches!(e, DebError::UnsupportedCompression { .. }), "{e}");

    let no_control = build_ar(&[("debian-binary", b"2.0\n".to_vec())]);
    let e = control_of_deb(no_control.as_slice(), "evil").unwrap_err();
    assert!(matches!(e, DebError::MissingMember { .. }), "{e}");
}
