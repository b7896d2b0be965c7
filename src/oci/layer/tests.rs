//! Tests of layer writing: determinism, golden digests, tar contents read back with the `tar`
//! crate, and every rejection.

use std::io::Read;

use super::*;

const MTIME: u64 = 1_700_000_000;

fn long_name(prefix: &str, n: usize) -> String {
    let mut s = prefix.to_owned();
    while s.len() < n {
        s.push_str("/abcdefghij");
    }
    s
}

/// A small layer exercising every entry kind, owners, odd modes and long names.
fn sample() -> (Vec<LayerEntry>, MemoryContent) {
    let mut c = MemoryContent::default();
    let long_file = format!("{}/file.txt", long_name("/opt/deep", 200));
    let entries = vec![
        c.add("/usr/bin/tool", b"#!/bin/sh\necho hi\n".to_vec(), 0o4755)
            .owned_by(0, 0),
        c.add("/etc/app/conf", b"key=value\n".to_vec(), 0o640)
            .owned_by(10001, 10001),
        c.add("/empty", Vec::new(), 0o600),
        c.add(&long_file, vec![b'x'; 1000], 0o644),
        LayerEntry::dir("/var/lib/app", 0o1770).owned_by(10001, 0),
        LayerEntry::dir("/etc", 0o755),
        LayerEntry::symlink("/usr/bin/t", "tool"),
        LayerEntry::symlink("/link-long", long_name("/target", 150)),
        LayerEntry::hardlink("/usr/bin/a-tool", "/usr/bin/tool"),
    ];
    (entries, c)
}

fn layer_bytes(
    entries: &[LayerEntry],
    content: &MemoryContent,
    compression: Compression,
) -> (Vec<u8>, LayerDigests) {
    let mut out = Vec::new();
    match write_layer(entries, content, compression, MTIME, &mut out) {
        Ok(d) => (out, d),
        Err(e) => panic!("write_layer failed: {e}"),
    }
}

fn decompress(bytes: &[u8], compression: Compression) -> Vec<u8> {
    let mut out = Vec::new();
    let r = match compression {
        Compression::Gzip => flate2::read::GzDecoder::new(bytes).read_to_end(&mut out),
        Compression::Zstd => {
            zstd::stream::read::Decoder::new(bytes).and_then(|mut d| d.read_to_end(&mut out))
        }
        Compression::Uncompressed => {
            out = bytes.to_vec();
            Ok(0)
        }
    };
    if let Err(e) = r {
        panic!("decompress: {e}");
    }
    out
}

fn shuffled<T: Clone>(v: &[T], seed: u64) -> Vec<T> {
    let mut v = v.to_vec();
    let mut x = seed | 1;
    for i in (1..v.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
    v
}

#[test]
fn same_entries_in_any_order_give_identical_bytes() {
    let (entries, content) = sample();
    for compression in [
        Compression::Gzip,
        Compression::Zstd,
        Compression::Uncompressed,
    ] {
        let (reference, d0) = layer_bytes(&entries, &content, compression);
        for seed in 1..6 {
            let (bytes, d) = layer_bytes(&shuffled(&entries, seed), &content, compression);
            assert_eq!(bytes, reference, "{compression:?} seed {seed}");
            assert_eq!(d, d0);
        }
    }
}

#[test]
fn digests_describe_the_streams() {
    let (entries, content) = sample();
    for compression in [
        Compression::Gzip,
        Compression::Zstd,
        Compression::Uncompressed,
    ] {
        let (bytes, d) = layer_bytes(&entries, &content, compression);
        assert_eq!(d.digest, Sha256Digest::of(&bytes));
        assert_eq!(d.size, bytes.len() as u64);
        let tar = decompress(&bytes, compression);
        assert_eq!(d.diff_id, Sha256Digest::of(&tar));
        assert_eq!(d.uncompressed_size, tar.len() as u64);
        assert_eq!(tar.len() % 512, 0);
        assert_eq!(&tar[tar.len() - 1024..], &[0u8; 1024][..]);
        let desc = d.descriptor(compression);
        assert_eq!(desc.media_type, compression.media_type());
    }
}

/// The format must never change silently: these digests pin the tar bytes, the gzip backend
/// (zlib-rs) and level, and the zstd level/mode. If one changes on purpose, every image digest
/// himg produces changes: say so in the changelog.
#[test]
fn golden_digests() {
    let (entries, content) = sample();
    let (_, tar) = layer_bytes(&entries, &content, Compression::Uncompressed);
    let (_, gz) = layer_bytes(&entries, &content, Compression::Gzip);
    let (_, zst) = layer_bytes(&entries, &content, Compression::Zstd);
    assert_eq!(tar.diff_id, tar.digest);
    assert_eq!(gz.diff_id, tar.diff_id);
    assert_eq!(zst.diff_id, tar.diff_id);
    let got = [
        tar.diff_id.to_string(),
        gz.digest.to_string(),
        zst.digest.to_string(),
    ];
    assert_eq!(
        got,
        [
            "sha256:f8635eeec80c1757104925af8644937b51ca260913f452e7523a95a75c4c4fa8",
            "sha256:1390a6f62a4e1aae859ab2e9c6fe49a176a5279f3a2c47c39bd0eb240909df79",
            "sha256:54e35e7acaaae8cd976b4fa3a87bd8803a105e88d33ad06ce7c548b7e44ac5e5",
        ]
    );
}

#[test]
fn gzip_header_is_fixed() {
    let (entries, content) = sample();
    let (bytes, _) = layer_bytes(&entries, &content, Compression::Gzip);
    // magic, CM=deflate, FLG=0 (no name/comment/extra), MTIME=0, XFL=0 (level 6), OS=255.
    assert_eq!(&bytes[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
}

#[test]
fn zstd_output_does_not_depend_on_worker_count() -> Result<(), OciError> {
    // Enough data for several zstd jobs.
    let mut content = MemoryContent::default();
    let mut entries = Vec::new();
    let mut x: u32 = 1;
    for i in 0..40 {
        let data: Vec<u8> = (0..300_000)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 24) as u8 % 16
            })
            .collect();
        entries.push(content.add(&format!("/f{i}"), data, 0o644));
    }
    let mut outputs = Vec::new();
    for workers in [1, 2, 4] {
        let mut out = Vec::new();
        let opts = LayerOptions {
            zstd_workers: workers,
            ..LayerOptions::new(Compression::Zstd, 0)
        };
        write_layer_with(&entries, &content, &opts, &mut out)?;
        outputs.push(out);
    }
    assert_eq!(outputs[0], outputs[1]);
    assert_eq!(outputs[0], outputs[2]);
    Ok(())
}

struct Read_ {
    path: String,
    kind: tar::EntryType,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    link: Option<String>,
    data: Vec<u8>,
}

fn read_back(tar_bytes: &[u8]) -> Vec<Read_> {
    let mut archive = tar::Archive::new(tar_bytes);
    let mut out = Vec::new();
    let entries = match archive.entries() {
        Ok(e) => e,
        Err(e) => panic!("{e}"),
    };
    for entry in entries {
        let mut entry = match entry {
            Ok(e) => e,
            Err(e) => panic!("{e}"),
        };
        let h = entry.header().clone();
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let link = entry
            .link_name_bytes()
            .map(|l| String::from_utf8_lossy(&l).into_owned());
        let mut data = Vec::new();
        if let Err(e) = entry.read_to_end(&mut data) {
            panic!("{e}");
        }
        assert_eq!(h.username_bytes(), Some(&b""[..]));
        assert_eq!(h.groupname_bytes(), Some(&b""[..]));
        assert_eq!(h.device_major().ok().flatten(), Some(0));
        assert_eq!(h.device_minor().ok().flatten(), Some(0));
        out.push(Read_ {
            path,
            kind: h.entry_type(),
            mode: h.mode().unwrap_or(u32::MAX),
            uid: h.uid().unwrap_or(u64::MAX),
            gid: h.gid().unwrap_or(u64::MAX),
            mtime: h.mtime().unwrap_or(u64::MAX),
            link,
            data,
        });
    }
    out
}

#[test]
fn tar_reads_back_with_the_tar_crate() {
    let (entries, content) = sample();
    let (bytes, _) = layer_bytes(&entries, &content, Compression::Gzip);
    let got = read_back(&decompress(&bytes, Compression::Gzip));
    let paths: Vec<&str> = got.iter().map(|e| e.path.as_str()).collect();
    let long_file = format!("{}/file.txt", long_name("/opt/deep", 200));
    let mut expected: Vec<String> = ["empty", "etc/", "etc/app/", "etc/app/conf", "link-long"]
        .map(str::to_owned)
        .to_vec();
    // Every ancestor of the long file, then the file.
    for (i, _) in long_file.match_indices('/').skip(1) {
        expected.push(format!("{}/", &long_file[1..i]));
    }
    expected.push(long_file[1..].to_owned());
    expected.extend(
        [
            "usr/",
            "usr/bin/",
            "usr/bin/a-tool",
            "usr/bin/t",
            "usr/bin/tool",
            "var/",
            "var/lib/",
            "var/lib/app/",
        ]
        .map(str::to_owned),
    );
    assert_eq!(paths, expected);
    assert!(long_file.len() > 150);

    let get = |p: &str| match got.iter().find(|e| e.path == p) {
        Some(e) => e,
        None => panic!("no {p}"),
    };
    for e in &got {
        assert_eq!(e.mtime, MTIME, "{}", e.path);
    }
    // Implicit parents: 0o755 root.
    for p in ["etc/app/", "usr/", "usr/bin/", "var/", "var/lib/", "opt/"] {
        let e = get(p);
        assert_eq!(
            (e.kind, e.mode, e.uid, e.gid),
            (tar::EntryType::Directory, 0o755, 0, 0),
            "{p}"
        );
    }
    let conf = get("etc/app/conf");
    assert_eq!((conf.mode, conf.uid, conf.gid), (0o640, 10001, 10001));
    assert_eq!(conf.data, b"key=value\n");
    let app = get("var/lib/app/");
    assert_eq!((app.mode, app.uid, app.gid), (0o1770, 10001, 0));
    // Hardlink group: the smaller path carries the data.
    let a = get("usr/bin/a-tool");
    assert_eq!((a.kind, a.mode), (tar::EntryType::Regular, 0o4755));
    assert_eq!(a.data, b"#!/bin/sh\necho hi\n");
    let tool = get("usr/bin/tool");
    assert_eq!(tool.kind, tar::EntryType::Link);
    assert_eq!(tool.link.as_deref(), Some("usr/bin/a-tool"));
    assert!(tool.data.is_empty());
    let t = get("usr/bin/t");
    assert_eq!(
        (t.kind, t.link.as_deref(), t.mode),
        (tar::EntryType::Symlink, Some("tool"), 0o777)
    );
    let ll = get("link-long");
    assert_eq!(ll.link, Some(long_name("/target", 150)));
    let lf = get(&long_file[1..]);
    assert_eq!(lf.data, vec![b'x'; 1000]);
    assert_eq!(get("empty").data, b"");
}

#[test]
fn hardlink_group_is_independent_of_the_named_target() {
    let mut c = MemoryContent::default();
    let f = c.add("/b", b"data".to_vec(), 0o755);
    let one = [
        f.clone(),
        LayerEntry::hardlink("/a", "/b"),
        LayerEntry::hardlink("/c", "/a"),
    ];
    let mut c2 = MemoryContent::default();
    let f2 = c2.add("/c", b"data".to_vec(), 0o755);
    let two = [
        LayerEntry::hardlink("/b", "/c"),
        LayerEntry::hardlink("/a", "/c"),
        f2,
    ];
    let (x, _) = layer_bytes(&one, &c, Compression::Uncompressed);
    let (y, _) = layer_bytes(&two, &c2, Compression::Uncompressed);
    assert_eq!(x, y);
    let got = read_back(&x);
    assert_eq!(got[0].path, "a");
    assert_eq!(got[0].data, b"data");
    assert_eq!(got[1].link.as_deref(), Some("a"));
    assert_eq!(got[2].link.as_deref(), Some("a"));
}

#[test]
fn huge_uid_goes_into_pax_records() -> Result<(), OciError> {
    let mut c = MemoryContent::default();
    let e = c
        .add("/f", b"x".to_vec(), 0o644)
        .owned_by(3_000_000, 4_000_000);
    let mut out = Vec::new();
    write_layer(&[e], &c, Compression::Uncompressed, 0, &mut out)?;
    let mut archive = tar::Archive::new(out.as_slice());
    let mut n = 0;
    for entry in archive.entries().map_err(OciError::LayerWrite)? {
        let mut entry = entry.map_err(OciError::LayerWrite)?;
        let mut recs = Vec::new();
        if let Some(exts) = entry.pax_extensions().map_err(OciError::LayerWrite)? {
            for ext in exts {
                let ext = ext.map_err(OciError::LayerWrite)?;
                recs.push(format!(
                    "{}={}",
                    ext.key().unwrap_or("?"),
                    ext.value().unwrap_or("?")
                ));
            }
        }
        assert_eq!(recs, ["gid=4000000", "uid=3000000"]);
        n += 1;
    }
    assert_eq!(n, 1);
    Ok(())
}

fn expect_err(entries: &[LayerEntry], content: &MemoryContent) -> OciError {
    let mut out = Vec::new();
    match write_layer(entries, content, Compression::Gzip, 0, &mut out) {
        Ok(_) => panic!("expected an error for {entries:?}"),
        Err(e) => e,
    }
}

#[test]
fn rejects_bad_paths() {
    let c = MemoryContent::default();
    for (path, reason) in [
        ("usr/bin", "not absolute"),
        ("/", "root directory"),
        ("/usr//bin", "empty path component"),
        ("/usr/bin/", "empty path component"),
        ("/usr/./bin", "`.`"),
        ("/usr/../etc", "`..`"),
        ("/a\0b", "NUL"),
    ] {
        match expect_err(&[LayerEntry::dir(path, 0o755)], &c) {
            OciError::InvalidPath { path: p, reason: r } => {
                assert_eq!(p, path);
                assert!(r.contains(reason), "{r}");
            }
            e => panic!("{path}: {e}"),
        }
    }
    let e = expect_err(&[LayerEntry::hardlink("/a", "b")], &c);
    assert_eq!(
        e.to_string(),
        "invalid hardlink target `b` for `/a`: not absolute (must start with `/`)"
    );
}

#[test]
fn rejects_bad_entries() {
    let mut c = MemoryContent::default();
    let f = c.add("/f", b"abc".to_vec(), 0o644);
    let cases: Vec<(Vec<LayerEntry>, &str)> = vec![
        (
            vec![LayerEntry::dir("/d", 0o755), LayerEntry::dir("/d", 0o700)],
            "duplicate layer entry `/d`",
        ),
        (
            vec![LayerEntry::dir("/d", 0o40755)],
            "invalid mode 0o40755 for `/d`",
        ),
        (
            vec![f.clone(), LayerEntry::dir("/f/x", 0o755)],
            "`/f/x` lies below `/f`",
        ),
        (
            vec![
                LayerEntry::symlink("/bin", "usr/bin"),
                LayerEntry::dir("/bin/ls", 0o755),
            ],
            "`/bin/ls` lies below `/bin`",
        ),
        (
            vec![LayerEntry::symlink("/s", "")],
            "invalid symlink target",
        ),
        (
            vec![LayerEntry::hardlink("/h", "/nope")],
            "`/nope`, which is not in this layer",
        ),
        (
            vec![
                LayerEntry::dir("/d", 0o755),
                LayerEntry::hardlink("/h", "/d"),
            ],
            "`/d`, which is not a regular file",
        ),
        (
            vec![
                LayerEntry::hardlink("/h", "/i"),
                LayerEntry::hardlink("/i", "/h"),
            ],
            "cycle",
        ),
        (
            vec![LayerEntry::file("/missing", 1, 0o644)],
            "cannot open the content of `/missing`",
        ),
        (
            vec![LayerEntry::file("/f", 4, 0o644)],
            "content of `/f` is 3 bytes, but the entry declares 4",
        ),
        (
            vec![LayerEntry::file("/f", 2, 0o644)],
            "content of `/f` is longer than the 2 bytes",
        ),
    ];
    for (entries, msg) in cases {
        let e = expect_err(&entries, &c);
        assert!(e.to_string().contains(msg), "{e} !~ {msg}");
    }
}

#[test]
fn dir_content_reads_from_a_tree() -> Result<(), Box<dyn std::error::Error>> {
    let tmp = tempfile::tempdir()?;
    std::fs::create_dir_all(tmp.path().join("usr/bin"))?;
    std::fs::write(tmp.path().join("usr/bin/x"), b"hello")?;
    let src = DirContent {
        root: tmp.path().to_owned(),
    };
    let mut out = Vec::new();
    let d = write_layer(
        &[LayerEntry::file("/usr/bin/x", 5, 0o755)],
        &src,
        Compression::Zstd,
        0,
        &mut out,
    )?;
    assert_eq!(d.size, out.len() as u64);
    let got = read_back(&decompress(&out, Compression::Zstd));
    assert_eq!(got.last().map(|e| e.data.clone()), Some(b"hello".to_vec()));
    Ok(())
}
