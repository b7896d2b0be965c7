//! The fixture `.deb` files are real `.deb` files (checked with the `ar`/`tar` crates and, on
//! Debian hosts, with `dpkg-deb` itself), and the hostile ones carry what they promise.

#[allow(dead_code)]
mod support;

use std::io::Read;
use std::process::Command;

use support::deb::{
    HOSTILE_DEVICE, HOSTILE_HARDLINK, HOSTILE_PARENT_PATH, HOSTILE_SIZE_LIE, HOSTILE_SYMLINK,
    HOSTILE_THROUGH,
};
use support::{Compression, DebBuilder};

fn members(deb: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut ar = ar::Archive::new(deb);
    let mut out = Vec::new();
    while let Some(entry) = ar.next_entry() {
        let mut entry = entry.expect("ar entry");
        let name = String::from_utf8(entry.header().identifier().to_vec()).expect("name");
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).expect("read");
        out.push((name, bytes));
    }
    out
}

fn decompress(name: &str, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    if name.ends_with(".xz") {
        liblzma::read::XzDecoder::new(bytes)
            .read_to_end(&mut out)
            .expect("xz");
    } else if name.ends_with(".zst") {
        out = zstd::decode_all(bytes).expect("zst");
    } else if name.ends_with(".gz") {
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .expect("gz");
    } else {
        out = bytes.to_vec();
    }
    out
}

/// (path, entry type, link name, size) of every entry.
fn listing(tar_bytes: &[u8]) -> Vec<(String, tar::EntryType, Option<String>, u64)> {
    let mut a = tar::Archive::new(tar_bytes);
    a.entries()
        .expect("entries")
        .map(|e| {
            let e = e.expect("entry");
            (
                String::from_utf8_lossy(&e.path_bytes()).into_owned(),
                e.header().entry_type(),
                e.link_name_bytes()
                    .map(|l| String::from_utf8_lossy(&l).into_owned()),
                e.header().size().expect("size"),
            )
        })
        .collect()
}

fn dpkg_deb() -> bool {
    Command::new("dpkg-deb")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn a_normal_deb_has_the_debian_layout() {
    for (cc, dc) in [
        (Compression::Xz, Compression::Xz),
        (Compression::Gzip, Compression::Zstd),
        (Compression::Zstd, Compression::Gzip),
        (Compression::None, Compression::None),
    ] {
        let long = format!("/usr/share/doc/{}/file", "x".repeat(120));
        let deb = DebBuilder::new("hello", "1:1.0-1", "amd64")
            .depends("libc6 (>= 2.36)")
            .pre_depends("dpkg (>= 1.17)")
            .provides("greeter")
            .conflicts("hello-legacy")
            .essential(true)
            .multi_arch("foreign")
            .source("hello-src (1.0-1)")
            .description("says hello\nA longer text.\n\nSecond paragraph.")
            .file("/usr/bin/hello", b"#!/bin/sh\necho hi\n", 0o755)
            .file(&long, b"long name", 0o644)
            .dir("/var/lib/hello", 0o700)
            .symlink("/usr/bin/hi", "hello")
            .symlink(
                &format!("/usr/bin/{}", "l".repeat(110)),
                &format!("../{}", "t".repeat(110)),
            )
            .hardlink("/usr/bin/hello2", "/usr/bin/hello")
            .conffile("/etc/hello.conf", b"greeting=hi\n")
            .script("postinst", "#!/bin/sh\nexit 0\n")
            .control_compression(cc)
            .data_compression(dc)
            .build()
            .expect("build");
        assert_eq!(deb.file_name(), "hello_1.0-1_amd64.deb");
        assert_eq!(deb.source, "hello-src");
        let m = members(&deb.bytes);
        assert_eq!(m[0], ("debian-binary".to_string(), b"2.0\n".to_vec()));
        assert!(
            m[1].0.starts_with("control.tar") && m[2].0.starts_with("data.tar"),
            "{:?}",
            m[1].0
        );

        let control = listing(&decompress(&m[1].0, &m[1].1));
        let names: Vec<&str> = control.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            vec!["./", "./control", "./md5sums", "./conffiles", "./postinst"]
        );

        let data = listing(&decompress(&m[2].0, &m[2].1));
        let find = |p: &str| {
            data.iter()
                .find(|e| e.0 == p)
                .unwrap_or_else(|| panic!("{p} in {data:?}"))
        };
        assert_eq!(find("./usr/bin/hello").1, tar::EntryType::Regular);
        assert_eq!(find("./usr/bin/hi").2.as_deref(), Some("hello"));
        assert_eq!(find("./usr/bin/hello2").1, tar::EntryType::Link);
        assert_eq!(
            find("./usr/bin/hello2").2.as_deref(),
            Some("./usr/bin/hello")
        );
        assert_eq!(find(&format!(".{long}")).3, 9);
        assert_eq!(find("./var/lib/hello/").1, tar::EntryType::Directory);
        assert!(
            data.iter().position(|e| e.0 == "./usr/").expect("parent")
                < data
                    .iter()
                    .position(|e| e.0 == "./usr/bin/hello")
                    .expect("child")
        );

        assert!(deb.control.contains("Essential: yes\n"));
        assert!(
            deb.control
                .contains("Description: says hello\n A longer text.\n .\n Second paragraph.")
        );
        assert_eq!(
            deb,
            DebBuilder::new("hello", "1:1.0-1", "amd64")
                .depends("libc6 (>= 2.36)")
                .pre_depends("dpkg (>= 1.17)")
                .provides("greeter")
                .conflicts("hello-legacy")
                .essential(true)
                .multi_arch("foreign")
                .source("hello-src (1.0-1)")
                .description("says hello\nA longer text.\n\nSecond paragraph.")
                .file("/usr/bin/hello", b"#!/bin/sh\necho hi\n", 0o755)
                .file(&long, b"long name", 0o644)
                .dir("/var/lib/hello", 0o700)
                .symlink("/usr/bin/hi", "hello")
                .symlink(
                    &format!("/usr/bin/{}", "l".repeat(110)),
                    &format!("../{}", "t".repeat(110))
                )
                .hardlink("/usr/bin/hello2", "/usr/bin/hello")
                .conffile("/etc/hello.conf", b"greeting=hi\n")
                .script("postinst", "#!/bin/sh\nexit 0\n")
                .control_compression(cc)
                .data_compression(dc)
                .build()
                .expect("again"),
            "deterministic"
        );

        if dpkg_deb() {
            let dir = tempfile::tempdir().expect("tmp");
            let p = dir.path().join(deb.file_name());
            std::fs::write(&p, &deb.bytes).expect("write");
            let out = Command::new("dpkg-deb")
                .arg("--info")
                .arg(&p)
                .output()
                .expect("dpkg-deb");
            assert!(
                out.status.success(),
                "dpkg-deb --info: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let info = String::from_utf8_lossy(&out.stdout);
            assert!(
                info.contains(" Package: hello") && info.contains(" Version: 1:1.0-1"),
                "{info}"
            );
            let field = Command::new("dpkg-deb")
                .args(["--field"])
                .arg(&p)
                .arg("Depends")
                .output()
                .expect("field");
            assert_eq!(
                String::from_utf8_lossy(&field.stdout).trim(),
                "libc6 (>= 2.36)"
            );
            let out = Command::new("dpkg-deb")
                .arg("--contents")
                .arg(&p)
                .output()
                .expect("dpkg-deb");
            assert!(
                out.status.success(),
                "dpkg-deb --contents: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let contents = String::from_utf8_lossy(&out.stdout);
            assert!(contents.contains("./usr/bin/hi -> hello"), "{contents}");
            assert!(
                contents.contains("./usr/bin/hello2 link to ./usr/bin/hello"),
                "{contents}"
            );
            let x = dir.path().join("x");
            let out = Command::new("dpkg-deb")
                .arg("-x")
                .arg(&p)
                .arg(&x)
                .output()
                .expect("dpkg-deb -x");
            assert!(
                out.status.success(),
                "dpkg-deb -x: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(
                std::fs::read(x.join("usr/bin/hello")).expect("extracted"),
                b"#!/bin/sh\necho hi\n"
            );
        }
    }
}

#[test]
fn hostile_debs_carry_the_hostile_entries() {
    let deb = DebBuilder::new("evil", "1", "amd64")
        .file("/usr/bin/ok", b"ok", 0o755)
        .hostile_parent_escape()
        .hostile_symlink_escape()
        .hostile_hardlink_outside()
        .hostile_char_device()
        .hostile_through_symlink()
        .build()
        .expect("build");
    let m = members(&deb.bytes);
    let data = listing(&decompress(&m[2].0, &m[2].1));
    let find = |p: &str| {
        data.iter()
            .find(|e| e.0 == p)
            .unwrap_or_else(|| panic!("{p} in {data:?}"))
    };
    assert_eq!(find(HOSTILE_PARENT_PATH).1, tar::EntryType::Regular);
    assert_eq!(
        find(HOSTILE_SYMLINK.0).2.as_deref(),
        Some(HOSTILE_SYMLINK.1)
    );
    assert_eq!(find(HOSTILE_HARDLINK.0).1, tar::EntryType::Link);
    assert_eq!(
        find(HOSTILE_HARDLINK.0).2.as_deref(),
        Some(HOSTILE_HARDLINK.1)
    );
    assert_eq!(find(HOSTILE_DEVICE).1, tar::EntryType::Char);
    assert_eq!(
        find(HOSTILE_THROUGH.0).2.as_deref(),
        Some(HOSTILE_THROUGH.1)
    );
    assert_eq!(find(HOSTILE_THROUGH.2).1, tar::EntryType::Regular);

    let lie = DebBuilder::new("liar", "1", "amd64")
        .file("/usr/bin/ok", b"ok", 0o755)
        .hostile_size_lie()
        .data_compression(Compression::Gzip)
        .build()
        .expect("build");
    let m = members(&lie.bytes);
    let tar_bytes = decompress(&m[2].0, &m[2].1);
    let mut a = tar::Archive::new(&tar_bytes[..]);
    let mut saw_error = false;
    for e in a.entries().expect("entries") {
        match e {
            Ok(mut e) => {
                let declared = e.header().size().expect("size");
                let mut v = Vec::new();
                if e.read_to_end(&mut v).is_err() || (v.len() as u64) < declared {
                    assert_eq!(e.path_bytes().as_ref(), HOSTILE_SIZE_LIE.as_bytes());
                    saw_error = true;
                }
            }
            Err(_) => saw_error = true,
        }
    }
    assert!(saw_error, "the size lie must surface as a read error");
}
