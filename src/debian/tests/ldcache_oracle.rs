//! `ld.so.cache` against the real `ldconfig -r ROOT` on a root unpacked from libc6, zlib1g and libssl.

use std::process::Command;

use super::super::dpkgdb::control_field;
use super::super::ldcache::{
    LdArch, debian_generator, generate_ld_so_cache, ld_so_cache_with_generator, scan_libs,
    search_dirs,
};
use super::super::unpack::{
    ContentSink, DebEntry, DebEntryKind, MemorySink, UnpackOptions, merged_usr_symlinks, unpack_deb,
};
use super::support::*;

fn image(with_conf: bool) -> (Vec<DebEntry>, MemorySink) {
    image_with(with_conf, false)
}

fn image_with(with_conf: bool, extras: bool) -> (Vec<DebEntry>, MemorySink) {
    let mut sink = MemorySink::new();
    let mut entries = merged_usr_symlinks();
    for name in ["libc6", "zlib1g", "libssl"] {
        let file = std::fs::File::open(deb_path(name)).expect("open");
        let u = unpack_deb(
            std::io::BufReader::new(file),
            name,
            &UnpackOptions::default(),
            &mut sink,
        )
        .expect("unpack");
        entries.extend(u.entries);
    }
    if with_conf {
        let text = b"include /etc/ld.so.conf.d/*.conf\n";
        let id = sink
            .put("/etc/ld.so.conf", &mut &text[..], text.len() as u64)
            .expect("put");
        entries.push(DebEntry {
            path: "/etc/ld.so.conf".into(),
            kind: DebEntryKind::File {
                size: text.len() as u64,
                content: id,
            },
            mode: 0o644,
            uid: 0,
            gid: 0,
            shipped_path: None,
        });
    }
    if extras {
        let t = "/usr/lib/x86_64-linux-gnu";
        // A development link to the soname link (keyed by its own name), one straight to the real file
        // (treated as another file of the same soname), a second copy in /usr/lib (same soname, later
        // directory), and a non-ELF file with a library name (skipped).
        entries.push(DebEntry::symlink(&format!("{t}/libssl.so"), "libssl.so.3"));
        entries.push(DebEntry::symlink(&format!("{t}/libz.so"), "libz.so.1.2.13"));
        entries.push(DebEntry {
            path: "/usr/lib/libz.so.1".into(),
            kind: DebEntryKind::Hardlink {
                target: format!("{t}/libz.so.1.2.13"),
            },
            mode: 0o644,
            uid: 0,
            gid: 0,
            shipped_path: None,
        });
        let text = b"not an ELF file\n";
        let id = sink
            .put("x", &mut &text[..], text.len() as u64)
            .expect("put");
        entries.push(DebEntry {
            path: format!("{t}/libbroken.so.1"),
            kind: DebEntryKind::File {
                size: text.len() as u64,
                content: id,
            },
            mode: 0o644,
            uid: 0,
            gid: 0,
            shipped_path: None,
        });
    }
    (entries, sink)
}

fn listing(cache: &std::path::Path) -> String {
    // The first line names the file: drop it.
    let text = run(Command::new("ldconfig").arg("-p").arg("-C").arg(cache));
    text.lines().skip(1).map(|l| format!("{l}\n")).collect()
}

fn check(with_conf: bool, extras: bool) {
    let (entries, sink) = image_with(with_conf, extras);
    let root = tempfile::tempdir().expect("tempdir");
    materialise(root.path(), &entries, &sink);
    run(Command::new("ldconfig").arg("-r").arg(root.path()));
    let oracle_path = root.path().join("etc/ld.so.cache");
    let oracle = std::fs::read(&oracle_path).expect("ldconfig wrote etc/ld.so.cache");

    // The generator names the ldconfig that ran: the host's libc-bin.
    let host_version = run(Command::new("dpkg-query").args(["-W", "-f", "${Version}", "libc-bin"]));
    let generator = debian_generator(host_version.trim());
    let ours =
        generate_ld_so_cache(&entries, LdArch::X86_64, &sink, Some(&generator)).expect("generate");

    let ours_path = root.path().join("ours.cache");
    std::fs::write(&ours_path, &ours).expect("write ours");
    assert_eq!(
        listing(&ours_path),
        listing(&oracle_path),
        "ldconfig -p listings differ"
    );
    assert!(
        ours == oracle,
        "ld.so.cache bytes differ from ldconfig's (first difference at byte {:?})",
        ours.iter().zip(&oracle).position(|(a, b)| a != b)
    );

    // The libc6 in the image also gives the right generator when it is the host's version.
    let libc = unpack_real("libc6", &UnpackOptions::default()).0;
    let v = control_field(&libc.control, "Version").expect("Version");
    if v == host_version.trim() {
        assert!(oracle.ends_with(debian_generator(&v).as_bytes()));
    }
    let text = listing(&ours_path);
    if extras {
        assert!(
            text.contains("\tlibssl.so (libc6,x86-64) => /lib/x86_64-linux-gnu/libssl.so\n"),
            "{text}"
        );
        assert_eq!(text.matches("\tlibz.so.1 (").count(), 2, "{text}");
        assert!(text.contains("=> /lib/libz.so.1\n"), "{text}");
        assert!(!text.contains("libbroken"), "{text}");
    }
    let n = text.lines().filter(|l| l.contains("=>")).count();
    assert!(n >= 23, "only {n} libraries");
}

#[test]
fn ld_so_cache_matches_ldconfig_without_ld_so_conf() {
    check(false, false);
}

#[test]
fn ld_so_cache_matches_ldconfig_with_ld_so_conf() {
    check(true, false);
}

#[test]
fn ld_so_cache_matches_ldconfig_with_dev_links_and_duplicates() {
    check(true, true);
}

#[test]
fn scan_finds_sonames_and_flags() {
    let (entries, sink) = image(true);
    let dirs = search_dirs(&entries, LdArch::X86_64, &sink);
    assert_eq!(dirs[0], "/usr/local/lib/x86_64-linux-gnu");
    let libs = scan_libs(&entries, &dirs, LdArch::X86_64, &sink).expect("scan");
    let z = libs.iter().find(|l| l.soname == "libz.so.1").expect("libz");
    assert_eq!(z.path, "/lib/x86_64-linux-gnu/libz.so.1");
    assert_eq!(z.flags, 0x0303);
    assert!(libs.iter().any(|l| l.soname == "ld-linux-x86-64.so.2"));
    assert!(libs.iter().any(|l| l.soname.starts_with("libssl.so.3")));
    // Without a generator the file still lists the same libraries.
    let bytes = ld_so_cache_with_generator(&libs, None);
    assert!(bytes.starts_with(b"glibc-ld.so.cache1.1"));
}
