//! Tests of layout and archive writing: updates in place, garbage collection, refusals,
//! closure checks, names.

use std::os::unix::fs::MetadataExt;

use super::*;
use crate::oci::config::ImageConfig;
use crate::oci::layer::{Compression, MemoryContent, write_layer};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn store_bytes(store: &Path, bytes: &[u8]) -> std::io::Result<Blob> {
    let digest = Sha256Digest::of(bytes);
    let path = store.join(digest.hex());
    fs::write(&path, bytes)?;
    Ok(Blob {
        digest,
        size: bytes.len() as u64,
        path,
    })
}

/// A one-layer image whose file content is `tag`.
fn image(
    store: &Path,
    name: &str,
    tag: &str,
    compression: Compression,
) -> Result<NamedImage, Box<dyn std::error::Error>> {
    let mut c = MemoryContent::default();
    let e = c.add("/tag", tag.as_bytes().to_vec(), 0o644);
    let mut layer = Vec::new();
    let d = write_layer(&[e], &c, compression, 0, &mut layer)?;
    let layer_blob = store_bytes(store, &layer)?;
    let mut cfg = ImageConfig::new(&Platform::linux("amd64"), 0);
    cfg.push_layer(d.diff_id, tag, None);
    let (cfg_bytes, cfg_desc) = cfg.to_blob()?;
    let cfg_blob = store_bytes(store, &cfg_bytes)?;
    let m = Manifest::new(cfg_desc, vec![d.descriptor(compression)]).to_canonical_json()?;
    let m_blob = store_bytes(store, &m)?;
    Ok(NamedImage {
        name: name.to_owned(),
        top: Descriptor::of_bytes(media_types::MANIFEST, &m),
        blobs: vec![layer_blob, cfg_blob, m_blob],
    })
}

fn blob_names(layout: &Path) -> std::io::Result<Vec<String>> {
    let mut names: Vec<String> = fs::read_dir(layout.join("blobs/sha256"))?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    names.sort();
    Ok(names)
}

#[test]
fn writes_a_layout_and_updates_it_in_place() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let store = tmp.path().join("store");
    fs::create_dir(&store)?;
    let a = image(&store, "b-second", "a", Compression::Gzip)?;
    let b = image(&store, "a-first", "b", Compression::Gzip)?;
    let layout = tmp.path().join("out/layout");
    write_layout(&layout, &[a.clone(), b.clone()])?;

    assert_eq!(fs::read(layout.join("oci-layout"))?, OCI_LAYOUT);
    let index = Index::from_json(&fs::read(layout.join("index.json"))?)?;
    let names: Vec<&str> = index
        .manifests
        .iter()
        .map(|d| d.annotations[REF_NAME_ANNOTATION].as_str())
        .collect();
    assert_eq!(names, ["a-first", "b-second"]);
    assert_eq!(index.manifests[0].digest, b.top.digest);
    let mut all: Vec<String> = a
        .blobs
        .iter()
        .chain(&b.blobs)
        .map(|b| b.digest.hex())
        .collect();
    all.sort();
    all.dedup();
    assert_eq!(blob_names(&layout)?, all);
    // Same filesystem: hardlinked from the store.
    let blob = &a.blobs[0];
    assert_eq!(
        fs::metadata(&blob.path)?.ino(),
        fs::metadata(layout.join("blobs/sha256").join(blob.digest.hex()))?.ino()
    );

    // Second build: only `a` remains. Foreign files are left alone.
    fs::write(layout.join("blobs/sha256/README"), b"not a blob")?;
    let stale = "0".repeat(64);
    fs::create_dir(layout.join("blobs/sha256").join(&stale))?;
    write_layout(&layout, std::slice::from_ref(&a))?;
    let mut want: Vec<String> = a.blobs.iter().map(|b| b.digest.hex()).collect();
    want.push("README".to_owned());
    want.push(stale);
    want.sort();
    assert_eq!(blob_names(&layout)?, want);
    let index = Index::from_json(&fs::read(layout.join("index.json"))?)?;
    assert_eq!(index.manifests.len(), 1);
    let leftovers: Vec<_> = fs::read_dir(&layout)?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    Ok(())
}

#[test]
fn replaces_a_blob_of_the_wrong_size_and_keeps_good_ones() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let store = tmp.path().join("store");
    fs::create_dir(&store)?;
    let a = image(&store, "a", "a", Compression::Zstd)?;
    let layout = tmp.path().join("layout");
    write_layout(&layout, std::slice::from_ref(&a))?;
    let target = layout.join("blobs/sha256").join(a.blobs[0].digest.hex());
    fs::remove_file(&target)?;
    fs::write(&target, b"truncated")?;
    let good = layout.join("blobs/sha256").join(a.blobs[1].digest.hex());
    let good_ino = fs::metadata(&good)?.ino();
    write_layout(&layout, std::slice::from_ref(&a))?;
    assert_eq!(fs::metadata(&target)?.len(), a.blobs[0].size);
    assert_eq!(fs::metadata(&good)?.ino(), good_ino);
    Ok(())
}

#[test]
fn a_directory_holding_only_an_interrupted_marker_is_still_empty() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let store = tmp.path().join("store");
    fs::create_dir(&store)?;
    let a = image(&store, "a", "a", Compression::Gzip)?;
    let out = tmp.path().join("out");
    fs::create_dir(&out)?;
    // What `kill -9` between creating the marker's temporary file and its rename leaves.
    fs::write(out.join(".oci-layout.tmp-4242"), b"{\"imageLay")?;
    write_layout(&out, std::slice::from_ref(&a))?;
    assert_eq!(fs::read(out.join("oci-layout"))?, OCI_LAYOUT);
    assert!(!out.join(".oci-layout.tmp-4242").exists());
    // Leftovers of an interrupted update of a layout go too.
    fs::write(out.join(".index.json.tmp-77"), b"{")?;
    fs::write(out.join("blobs/sha256/.tmp-abc-77"), b"partial")?;
    write_layout(&out, std::slice::from_ref(&a))?;
    assert!(!out.join(".index.json.tmp-77").exists());
    assert!(!out.join("blobs/sha256/.tmp-abc-77").exists());
    // Anything else still makes it someone else's directory.
    let other = tmp.path().join("other");
    fs::create_dir(&other)?;
    fs::write(other.join(".oci-layout.tmp-1"), b"")?;
    fs::write(other.join("notes.txt"), b"mine")?;
    assert!(write_layout(&other, std::slice::from_ref(&a)).is_err());
    Ok(())
}

#[test]
fn refuses_directories_that_are_not_layouts() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let store = tmp.path().join("store");
    fs::create_dir(&store)?;
    let a = image(&store, "a", "a", Compression::Gzip)?;
    let home = tmp.path().join("home");
    fs::create_dir(&home)?;
    fs::write(home.join("precious.txt"), b"keep me")?;
    match write_layout(&home, std::slice::from_ref(&a)) {
        Err(e @ OciError::NotAnOciLayout { .. }) => {
            assert!(e.to_string().contains("has no `oci-layout` file"), "{e}");
        }
        other => return Err(format!("{other:?}").into()),
    }
    assert_eq!(fs::read_dir(&home)?.count(), 1);
    fs::write(
        home.join("oci-layout"),
        b"{\"imageLayoutVersion\":\"2.0.0\"}",
    )?;
    let e = write_layout(&home, std::slice::from_ref(&a))
        .err()
        .map(|e| e.to_string());
    assert!(
        e.as_deref()
            .is_some_and(|e| e.contains("unsupported imageLayoutVersion `2.0.0`")),
        "{e:?}"
    );
    let file = tmp.path().join("file");
    fs::write(&file, b"")?;
    let e = write_layout(&file, std::slice::from_ref(&a))
        .err()
        .map(|e| e.to_string());
    assert!(
        e.as_deref().is_some_and(|e| e.contains("not a directory")),
        "{e:?}"
    );
    // An empty directory is fine.
    let empty = tmp.path().join("empty");
    fs::create_dir(&empty)?;
    write_layout(&empty, &[a])?;
    Ok(())
}

#[test]
fn checks_the_closure_of_every_image() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let store = tmp.path().join("store");
    fs::create_dir(&store)?;
    let out = tmp.path().join("layout");
    let a = image(&store, "a", "a", Compression::Gzip)?;

    let mut missing = a.clone();
    missing.blobs.remove(0);
    match write_layout(&out, &[missing]) {
        Err(OciError::BlobMissing { image, digest }) => {
            assert_eq!((image.as_str(), digest), ("a", a.blobs[0].digest));
        }
        other => return Err(format!("{other:?}").into()),
    }

    let mut wrong_size = a.clone();
    wrong_size.blobs[0].size += 1;
    assert!(matches!(
        write_layout(&out, &[wrong_size]),
        Err(OciError::ConflictingBlob { .. })
    ));

    let tampered = image(&store, "t", "t", Compression::Gzip)?;
    let m = &tampered.blobs[2];
    let mut bytes = fs::read(&m.path)?;
    bytes[0] = b' ';
    fs::write(&m.path, &bytes)?;
    assert!(matches!(
        write_layout(&out, &[tampered]),
        Err(OciError::BlobDigestMismatch { .. })
    ));

    let b = image(&store, "a", "b", Compression::Gzip)?;
    assert!(matches!(
        write_layout(&out, &[a.clone(), b]),
        Err(OciError::DuplicateImageName { .. })
    ));
    assert!(!out.exists(), "nothing written on a refused input");

    let mut short = a.clone();
    let short_layer = tmp.path().join("short");
    fs::write(&short_layer, b"x")?;
    short.blobs[0].path = short_layer;
    match write_oci_archive(&tmp.path().join("x.tar"), &[short]) {
        Err(OciError::BlobSizeMismatch { actual: 1, .. }) => {}
        other => return Err(format!("{other:?}").into()),
    }
    assert!(!tmp.path().join("x.tar").exists());
    Ok(())
}

#[test]
fn docker_archive_manifest_json() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let store = tmp.path().join("store");
    fs::create_dir(&store)?;
    let a = image(
        &store,
        "registry.example:5000/team/app",
        "a",
        Compression::Gzip,
    )?;
    let file = tmp.path().join("d.tar");
    write_docker_archive(&file, &a, None)?;
    let mut archive = tar::Archive::new(fs::File::open(&file)?);
    let mut names = Vec::new();
    let mut manifest = String::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.to_string_lossy().into_owned();
        if path == "manifest.json" {
            entry.read_to_string(&mut manifest)?;
        }
        names.push(path);
    }
    let hex = |i: usize| a.blobs[i].digest.hex();
    let mut blobs = [hex(0), hex(1), hex(2)];
    blobs.sort();
    let mut expected = vec!["blobs/".to_owned(), "blobs/sha256/".to_owned()];
    expected.extend(blobs.iter().map(|h| format!("blobs/sha256/{h}")));
    expected.extend(["index.json", "manifest.json", "oci-layout"].map(str::to_owned));
    assert_eq!(names, expected);
    assert_eq!(
        manifest,
        format!(
            r#"[{{"Config":"blobs/sha256/{}","Layers":["blobs/sha256/{}"],"RepoTags":["registry.example:5000/team/app:latest"]}}]"#,
            hex(1),
            hex(0)
        )
    );
    Ok(())
}

#[test]
fn ref_names_follow_the_spec_grammar() {
    for ok in [
        "latest",
        "app",
        "app:1.2",
        "org/app:v1",
        "a--b",
        "x@y",
        "a+b",
        "A.b_c-d",
    ] {
        assert!(validate_ref_name(ok).is_ok(), "{ok}");
    }
    for bad in [
        "", "/a", "a/", "a//b", "-a", "a-", "a..b", "a---b", "a b", "a/é",
    ] {
        assert!(validate_ref_name(bad).is_err(), "{bad}");
    }
}

#[test]
fn docker_refs() -> Result<(), OciError> {
    let r = DockerRef::parse("app")?;
    assert_eq!(r.repo_tag(), "app:latest");
    let r = DockerRef::parse("localhost:5000/app:1.0")?;
    assert_eq!(
        (r.repo.as_str(), r.tag.as_str()),
        ("localhost:5000/app", "1.0")
    );
    let r = DockerRef::parse("localhost:5000/app")?;
    assert_eq!(r.repo_tag(), "localhost:5000/app:latest");
    for bad in ["App", "app@sha256:00", "app:", "app:-x", "a//b", "app/"] {
        assert!(DockerRef::parse(bad).is_err(), "{bad}");
    }
    // Docker's reference grammar: separators `.`, `_`, `__` or `-+`; hosts with a port.
    for ok in [
        "a__b",
        "a---b",
        "a.b_c",
        "registry.example:5000/team/app:1.2",
        "localhost/a",
    ] {
        assert!(DockerRef::parse(ok).is_ok(), "{ok}");
    }
    for bad in [
        "a..b",
        "a___b",
        "a_.b",
        "-a",
        "reg_istry.example/app",
        "registry.example:x/app",
    ] {
        assert!(DockerRef::parse(bad).is_err(), "{bad}");
    }
    assert_eq!(
        docker_tag("registry.example/team/app")?,
        "registry.example/team/app:latest"
    );
    Ok(())
}
