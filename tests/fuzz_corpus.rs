//! The fuzz targets' inputs in the normal test suite: every committed seed (`fuzz/corpus/TARGET/`)
//! and every finding (`fuzz/regressions/TARGET/`) goes through the same entry points as in
//! `fuzz/fuzz_targets/TARGET.rs`, without panicking; seeds that are valid inputs are accepted.
//! `cargo test --test fuzz_corpus -- --ignored` regenerates the seeds made by the test fixtures
//! (signed InRelease and Packages, `.deb`s, cache archives, OCI documents).

#[allow(dead_code)]
mod support;

use std::path::{Path, PathBuf};

use himg::debian::keyring::Keyring;
use himg::debian::unpack::{MemorySink, UnpackOptions, unpack_deb};
use himg::debian::{control, index, release};
use support::{Compression, DebBuilder, RepoBuilder, TestKey};

/// 2025-01-01T01:00:00Z, when the seed InRelease files are valid (as in the fuzz target).
const NOW: i64 = 1_735_693_200;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files of `fuzz/corpus/TARGET` and `fuzz/regressions/TARGET`, sorted.
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz_dir().join(dir).join(target)) else {
            continue;
        };
        for e in entries.flatten() {
            let bytes = std::fs::read(e.path()).expect("read input");
            out.push((e.path(), bytes));
        }
    }
    out.sort();
    out
}

fn keyring() -> Keyring {
    let bytes = std::fs::read(fuzz_dir().join("keys/fixture.gpg")).expect("fuzz keyring");
    Keyring::from_bytes_named("fixture.gpg", &bytes).expect("keyring")
}

#[test]
fn debian_index_inputs() {
    let keys = keyring();
    let all = inputs("debian_index");
    assert!(all.len() >= 3, "seeds missing");
    for (path, data) in &all {
        let verified = release::verify_inrelease(data, &keys, NOW);
        if path.starts_with(fuzz_dir().join("corpus")) && path.ends_with("inrelease") {
            verified.expect("the seed InRelease verifies");
        }
        let _ = Keyring::from_bytes(data);
        if let Ok(text) = std::str::from_utf8(data) {
            if let Ok(r) = release::parse_release(text, "fuzz") {
                let _ = release::index_path(&r, "main", "amd64");
            }
            let _ = index::parse_packages(text);
            let _ = control::parse_stanzas(text);
            let _ = control::parse_relations(text);
        }
        for ext in ["P.xz", "P.gz", "P.zst"] {
            let _ = release::decompress_index(ext, data);
        }
    }
}

#[test]
fn deb_unpack_inputs() {
    let all = inputs("deb_unpack");
    assert!(all.len() >= 3, "seeds missing");
    for (path, data) in &all {
        let mut sink = MemorySink::new();
        let r = unpack_deb(&data[..], "fuzz", &UnpackOptions::default(), &mut sink);
        if path.starts_with(fuzz_dir().join("corpus")) {
            r.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }
}

#[test]
fn cache_archive_inputs() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = himg_store::Store::open(dir.path()).expect("store");
    let all = inputs("cache_archive");
    assert!(!all.is_empty(), "seeds missing");
    for (path, data) in &all {
        let compressed = himg::cache::archive::unpack(&store, &mut &data[..]);
        let plain = himg::cache::archive::read(&store, &mut &data[..]);
        if path.starts_with(fuzz_dir().join("corpus")) {
            assert!(
                compressed.is_ok() || plain.is_ok(),
                "{}: {compressed:?} {plain:?}",
                path.display()
            );
        }
    }
    store.verify().expect("verify");
}

#[test]
fn oci_json_inputs() {
    use himg::oci::config::ImageConfig;
    use himg::oci::manifest::{Index, Manifest};
    let all = inputs("oci_json");
    assert!(all.len() >= 3, "seeds missing");
    for (_, data) in &all {
        if let Ok(m) = Manifest::from_json(data) {
            let _ = m.to_canonical_json();
        }
        if let Ok(i) = Index::from_json(data) {
            let _ = i.to_canonical_json();
        }
        let _ = ImageConfig::from_json(data);
        if let Ok(text) = std::str::from_utf8(data) {
            let _ = himg_store::Sha256Digest::try_from(text);
            let _ = himg_store::ObjectRef::try_from(text);
            let _ = himg_store::Sha256Digest::from_hex(text);
        }
    }
}

#[test]
fn registry_response_inputs() {
    use himg::registry::{Reference, interpret_response_headers};
    let all = inputs("registry_response");
    assert!(!all.is_empty(), "seeds missing");
    for (_, data) in &all {
        let Ok(text) = std::str::from_utf8(data) else {
            continue;
        };
        let _ = text.parse::<Reference>();
        let (challenge, link) = text.split_once('\n').unwrap_or((text, text));
        let _ = interpret_response_headers(challenge, link);
    }
}

#[test]
fn himg_lang_inputs() {
    use himg_lang::{MemoryLoader, SourcePath, evaluate, format_source};
    let all = inputs("himg_lang");
    assert!(!all.is_empty(), "seeds missing");
    for (_, data) in &all {
        let mut loader = MemoryLoader::new();
        loader.insert("main.himg", data.to_vec());
        loader.insert("lib.himg", "let x = 1\nlet f(a) = a + x\nimage \"l\" {}\n");
        loader.insert("build/hello", "bin");
        loader.insert("site/index.html", "x");
        loader.insert("keys/debian.gpg", "key");
        if let Err(d) = evaluate(&SourcePath("main.himg".into()), &loader) {
            let _ = d.render();
        }
        if let Ok(text) = std::str::from_utf8(data)
            && let Err(d) = format_source("main.himg", text)
        {
            let _ = d.render();
        }
    }
}

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = fuzz_dir().join("corpus").join(target);
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join(name), bytes).expect("write seed");
}

/// Regenerates the seeds the fixtures make (run by hand; the output is committed).
#[test]
#[ignore = "writes fuzz/corpus and fuzz/keys; run by hand when the fixtures change"]
fn write_fuzz_seeds() {
    let key = TestKey::generate("fuzz fixture");
    std::fs::create_dir_all(fuzz_dir().join("keys")).expect("mkdir");
    std::fs::write(fuzz_dir().join("keys/fixture.gpg"), key.public_keyring()).expect("key");

    let hello = DebBuilder::new("hello", "1.0-1", "amd64")
        .depends("libc6 (>= 2.36) | libc6.1, base-files")
        .file("./usr/bin/hello", b"#!/bin/sh\necho hello\n", 0o755)
        .file("./usr/share/doc/hello/copyright", b"MIT\n", 0o644)
        .symlink("./usr/bin/hi", "hello")
        .hardlink("./usr/bin/hello2", "./usr/bin/hello")
        .build()
        .expect("deb");
    write("deb_unpack", "hello-xz.deb", &hello.bytes);
    for (name, c) in [
        ("hello-zst.deb", Compression::Zstd),
        ("hello-gz.deb", Compression::Gzip),
        ("hello-plain.deb", Compression::None),
    ] {
        let deb = DebBuilder::new("hello", "1.0-1", "amd64")
            .file("./bin/hello", b"hi\n", 0o4755)
            .dir("./var/mail/", 0o2775)
            .data_compression(c)
            .build()
            .expect("deb");
        write("deb_unpack", name, &deb.bytes);
    }

    let mut rb = RepoBuilder::new();
    rb.sign_with(&key);
    rb.suite("trixie").suite_field("stable").add("main", &hello);
    let repo = rb.write_temp().expect("repo");
    let read = |rel: &str| std::fs::read(repo.path(rel)).expect(rel);
    write("debian_index", "inrelease", &read("dists/trixie/InRelease"));
    write("debian_index", "release", &read("dists/trixie/Release"));
    write(
        "debian_index",
        "packages",
        &read("dists/trixie/main/binary-amd64/Packages"),
    );

    let dir = tempfile::tempdir().expect("tmp");
    let store = himg_store::Store::open(dir.path()).expect("store");
    let a = store.put_blob(b"hello\n").expect("blob");
    let b = store.put_blob(&[0u8; 300]).expect("blob");
    let o = store.put_oci_blob(b"{\"schemaVersion\":2}").expect("oci");
    let roots = [
        himg_store::ObjectRef::Blob(a),
        himg_store::ObjectRef::Blob(b),
        himg_store::ObjectRef::Oci(o),
    ];
    let mut packed = Vec::new();
    himg::cache::archive::pack(&store, &roots, &mut packed).expect("pack");
    write("cache_archive", "three-objects.zst", &packed);
    let mut plain = Vec::new();
    himg::cache::archive::write(&store, &roots, &mut plain).expect("write");
    write("cache_archive", "three-objects.plain", &plain);

    use himg::oci::manifest::{Descriptor, Index, Manifest, Platform};
    let config = br#"{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/bin"],"User":"65532"},"rootfs":{"type":"layers","diff_ids":["sha256:0000000000000000000000000000000000000000000000000000000000000000"]},"history":[{"created_by":"himg"}]}"#;
    write("oci_json", "config.json", config);
    let manifest = Manifest::new(
        Descriptor::of_bytes("application/vnd.oci.image.config.v1+json", config),
        vec![Descriptor::of_bytes(
            "application/vnd.oci.image.layer.v1.tar+gzip",
            b"layer",
        )],
    );
    let manifest_json = manifest.to_canonical_json().expect("manifest");
    write("oci_json", "manifest.json", &manifest_json);
    let index = Index::new(vec![
        Descriptor::of_bytes("application/vnd.oci.image.manifest.v1+json", &manifest_json)
            .with_platform(Platform::linux("amd64"))
            .with_annotation("org.opencontainers.image.ref.name", "app"),
    ]);
    write(
        "oci_json",
        "index.json",
        &index.to_canonical_json().expect("index"),
    );

    write(
        "registry_response",
        "bearer",
        b"Bearer realm=\"http://127.0.0.1:5000/token\",service=\"registry\",scope=\"repository:app:pull\"\n</v2/app/tags/list?n=100&last=v1>; rel=\"next\"",
    );
    write(
        "registry_response",
        "basic",
        b"Basic realm=\"registry\"\n</v2/_catalog?last=a>; rel=\"next\", </v2/_catalog>; rel=\"first\"",
    );
    write(
        "registry_response",
        "reference",
        b"127.0.0.1:5000/team/app:1.0@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    );

    for e in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples"))
        .expect("examples")
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".himg") {
            write(
                "himg_lang",
                &name,
                &std::fs::read(e.path()).expect("example"),
            );
        }
    }
}
