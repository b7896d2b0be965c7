//! Judges the OCI output with the real tools users run: oci-image-tool, skopeo, umoci, GNU tar
//! and (when a daemon answers) docker. A missing tool fails the test: install them with
//! `apt-get install -y skopeo umoci oci-image-tool`.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use himg::oci::layout::validate_ref_name;
use himg::oci::{
    Blob, Compression, ConfigOverrides, Descriptor, DirContent, ImageConfig, Index, LayerEntry,
    Manifest, MemoryContent, NamedImage, OciError, Platform, Sha256Digest, media_types,
    write_docker_archive, write_layer, write_layout, write_oci_archive,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const EPOCH: u64 = 1_700_000_000;

/// Runs a tool and returns its stdout; fails the test with its stderr when it fails, and with
/// an install hint when it is missing.
fn run(program: &str, args: &[&str]) -> Result<String, Box<dyn std::error::Error>> {
    let out = match Command::new(program).args(args).output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "`{program}` is not installed: apt-get install -y skopeo umoci oci-image-tool"
            )
            .into());
        }
        Err(e) => return Err(e.into()),
    };
    if !out.status.success() {
        return Err(format!(
            "`{program} {}` failed ({}):\n{}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8(out.stdout)?)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

/// Writes `bytes` as a blob file in the fake store and describes it.
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

/// Writes a layer into the fake store; returns the blob, its descriptor and diff_id.
fn store_layer(
    store: &Path,
    entries: &[LayerEntry],
    content: &dyn himg::oci::ContentSource,
    compression: Compression,
) -> Result<(Blob, Descriptor, Sha256Digest), Box<dyn std::error::Error>> {
    let tmp = store.join("layer.tmp");
    let mut f = fs::File::create(&tmp)?;
    let d = write_layer(entries, content, compression, EPOCH, &mut f)?;
    drop(f);
    let path = store.join(d.digest.hex());
    fs::rename(&tmp, &path)?;
    let blob = Blob {
        digest: d.digest,
        size: d.size,
        path,
    };
    Ok((blob, d.descriptor(compression), d.diff_id))
}

/// The two layers of the test image.
fn layers() -> (Vec<LayerEntry>, Vec<LayerEntry>, MemoryContent) {
    let mut c = MemoryContent::default();
    let long = format!("/opt/{}/{}/data.txt", "d".repeat(90), "e".repeat(90));
    let one = vec![
        c.add(
            "/usr/bin/app",
            b"#!/bin/sh\necho hello from himg\n".to_vec(),
            0o755,
        ),
        c.add("/etc/app/conf", b"key=value\n".to_vec(), 0o640)
            .owned_by(10001, 10001),
        LayerEntry::dir("/var/lib/app", 0o1770).owned_by(10001, 10001),
        c.add(&long, b"long path\n".to_vec(), 0o644),
    ];
    let two = vec![
        LayerEntry::symlink("/usr/bin/app-link", "app"),
        LayerEntry::dir("/srv", 0o2775).owned_by(10001, 10001),
        c.add("/srv/index.html", b"<h1>hi</h1>\n".to_vec(), 0o444)
            .owned_by(10001, 10001),
        LayerEntry::hardlink("/srv/copy.html", "/srv/index.html"),
        LayerEntry::symlink(
            format!("/opt/{}", "l".repeat(120)),
            "/".to_owned() + &"t".repeat(130),
        ),
    ];
    (one, two, c)
}

/// One platform's manifest (and everything under it) in the fake store.
struct Single {
    manifest: Descriptor,
    blobs: Vec<Blob>,
    diff_ids: Vec<Sha256Digest>,
}

fn build_single(
    store: &Path,
    arch: &str,
    compression: Compression,
) -> Result<Single, Box<dyn std::error::Error>> {
    let (one, two, content) = layers();
    let (b1, d1, id1) = store_layer(store, &one, &content, compression)?;
    let (b2, d2, id2) = store_layer(store, &two, &content, compression)?;
    let mut cfg = ImageConfig::new(&Platform::linux(arch), EPOCH);
    cfg.config = cfg.config.merged(&ConfigOverrides {
        user: Some("10001:10001".into()),
        env: [("PATH".to_owned(), "/usr/bin:/bin".to_owned())]
            .into_iter()
            .collect(),
        entrypoint: Some(vec!["/usr/bin/app".into()]),
        cmd: Some(vec!["--serve".into()]),
        working_dir: Some("/srv".into()),
        labels: BTreeMap::from([(
            "org.opencontainers.image.title".to_owned(),
            "demo".to_owned(),
        )]),
        exposed_ports: ["8080".to_owned()].into(),
        ..ConfigOverrides::default()
    });
    cfg.push_layer(id1, "base", None);
    cfg.push_layer(id2, "app", Some("symlink, setgid dir, hardlink"));
    let (cfg_bytes, cfg_desc) = cfg.to_blob()?;
    let cfg_blob = store_bytes(store, &cfg_bytes)?;
    let manifest = Manifest::new(cfg_desc, vec![d1, d2]);
    let m_bytes = manifest.to_canonical_json()?;
    let m_blob = store_bytes(store, &m_bytes)?;
    Ok(Single {
        manifest: Descriptor::of_bytes(media_types::MANIFEST, &m_bytes),
        blobs: vec![b1, b2, cfg_blob, m_blob],
        diff_ids: vec![id1, id2],
    })
}

fn single_image(name: &str, single: &Single) -> NamedImage {
    NamedImage {
        name: name.to_owned(),
        top: single.manifest.clone(),
        blobs: single.blobs.clone(),
    }
}

#[test]
fn layout_passes_oci_image_tool_skopeo_and_umoci() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let store = tmp.path().join("store");
    fs::create_dir(&store)?;
    let single = build_single(&store, "amd64", Compression::Gzip)?;
    let layout = tmp.path().join("layout");
    write_layout(&layout, &[single_image("demo", &single)])?;

    run(
        "oci-image-tool",
        &[
            "validate",
            "--type",
            "image",
            s(&layout),
            "--ref",
            "name=demo",
        ],
    )?;

    let inspect: serde_json::Value = serde_json::from_str(&run(
        "skopeo",
        &["inspect", &format!("oci:{}:demo", s(&layout))],
    )?)?;
    assert_eq!(inspect["Architecture"], "amd64");
    assert_eq!(inspect["Os"], "linux");
    assert_eq!(inspect["Layers"].as_array().map(Vec::len), Some(2));
    assert_eq!(inspect["Created"], "2023-11-14T22:13:20Z");
    let config: serde_json::Value = serde_json::from_str(&run(
        "skopeo",
        &["inspect", "--config", &format!("oci:{}:demo", s(&layout))],
    )?)?;
    assert_eq!(config["config"]["User"], "10001:10001");
    assert_eq!(
        config["rootfs"]["diff_ids"][1],
        single.diff_ids[1].to_string()
    );

    // GNU tar reads the layers and sees the numeric owners and fixed mtime.
    let listing = run(
        "tar",
        &[
            "--numeric-owner",
            "--full-time",
            "-tvzf",
            s(&single.blobs[0].path),
        ],
    )?;
    assert!(listing.contains("drwxrwx--T 10001/10001"), "{listing}");
    assert!(
        listing.contains("2023-11-14 22:13:20 etc/app/conf"),
        "{listing}"
    );

    // umoci checks every diff_id while unpacking.
    let bundle = tmp.path().join("bundle");
    run(
        "umoci",
        &[
            "unpack",
            "--rootless",
            "--image",
            &format!("{}:demo", s(&layout)),
            s(&bundle),
        ],
    )?;
    let rootfs = bundle.join("rootfs");
    let mode = |p: &str| -> std::io::Result<u32> {
        Ok(fs::symlink_metadata(rootfs.join(p))?.permissions().mode() & 0o7777)
    };
    assert_eq!(
        fs::read(rootfs.join("usr/bin/app"))?,
        b"#!/bin/sh\necho hello from himg\n"
    );
    assert_eq!(mode("usr/bin/app")?, 0o755);
    assert_eq!(mode("etc/app/conf")?, 0o640);
    assert_eq!(mode("var/lib/app")?, 0o1770);
    assert_eq!(mode("srv")?, 0o2775);
    assert_eq!(
        fs::read_link(rootfs.join("usr/bin/app-link"))?,
        PathBuf::from("app")
    );
    let long = format!("opt/{}/{}/data.txt", "d".repeat(90), "e".repeat(90));
    assert_eq!(fs::read(rootfs.join(&long))?, b"long path\n");
    let link = fs::read_link(rootfs.join(format!("opt/{}", "l".repeat(120))))?;
    assert_eq!(link, PathBuf::from(format!("/{}", "t".repeat(130))));
    let a = fs::metadata(rootfs.join("srv/index.html"))?;
    let b = fs::metadata(rootfs.join("srv/copy.html"))?;
    assert_eq!(a.ino(), b.ino(), "hardlink kept");
    let runtime: serde_json::Value =
        serde_json::from_slice(&fs::read(bundle.join("config.json"))?)?;
    assert_eq!(runtime["process"]["user"]["uid"], 10001);
    assert_eq!(runtime["process"]["cwd"], "/srv");
    assert_eq!(
        runtime["process"]["args"],
        serde_json::json!(["/usr/bin/app", "--serve"])
    );
    Ok(())
}

#[test]
fn layout_update_in_place_stays_valid() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let store = tmp.path().join("store");
    fs::create_dir(&store)?;
    let gz = build_single(&store, "amd64", Compression::Gzip)?;
    let zst = build_single(&store, "amd64", Compression::Zstd)?;
    let layout = tmp.path().join("layout");
    write_layout(
        &layout,
        &[single_image("gz", &gz), single_image("zst", &zst)],
    )?;
    // zstd is read by skopeo (oci-image-tool rejects zstd layers by design).
    run("skopeo", &["inspect", &format!("oci:{}:zst", s(&layout))])?;
    // Second build drops `zst`: its layers go, the layout validates.
    write_layout(&layout, &[single_image("gz", &gz)])?;
    run(
        "oci-image-tool",
        &[
            "validate",
            "--type",
            "image",
            s(&layout),
            "--ref",
            "name=gz",
        ],
    )?;
    for blob in &zst.blobs[..2] {
        assert!(!layout.join("blobs/sha256").join(blob.digest.hex()).exists());
    }
    let index: serde_json::Value = serde_json::from_slice(&fs::read(layout.join("index.json"))?)?;
    assert_eq!(index["manifests"].as_array().map(Vec::len), Some(1));
    Ok(())
}

#[test]
fn zstd_layers_decode_to_the_declared_diff_ids() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let store = tmp.path().join("store");
    fs::create_dir(&store)?;
    let zst = build_single(&store, "amd64", Compression::Zstd)?;
    let layout = tmp.path().join("layout");
    write_layout(&layout, &[single_image("z", &zst)])?;
    // skopeo decompresses our zstd and recompresses with gzip; umoci then checks diff_ids.
    let gz = tmp.path().join("gz");
    run(
        "skopeo",
        &[
            "copy",
            "--dest-compress-format",
            "gzip",
            &format!("oci:{}:z", s(&layout)),
            &format!("oci:{}:z", s(&gz)),
        ],
    )?;
    run(
        "umoci",
        &[
            "unpack",
            "--rootless",
            "--image",
            &format!("{}:z", s(&gz)),
            s(&tmp.path().join("b")),
        ],
    )?;
    assert!(tmp.path().join("b/rootfs/srv/index.html").exists());
    Ok(())
}

#[test]
fn oci_archive_is_deterministic_and_copies_with_skopeo() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let store = tmp.path().join("store");
    fs::create_dir(&store)?;
    let single = build_single(&store, "amd64", Compression::Gzip)?;
    let img = single_image("demo", &single);
    let archive = tmp.path().join("demo.tar");
    write_oci_archive(&archive, std::slice::from_ref(&img))?;
    let again = tmp.path().join("again.tar");
    write_oci_archive(&again, &[img])?;
    assert_eq!(fs::read(&archive)?, fs::read(&again)?);

    let listing = run(
        "tar",
        &["--numeric-owner", "--full-time", "-tvf", s(&archive)],
    )?;
    assert!(listing.starts_with("drwxr-xr-x 0/0"), "{listing}");
    assert!(
        listing.contains("1970-01-01 00:00:00 oci-layout"),
        "{listing}"
    );

    let other = tmp.path().join("other");
    run(
        "skopeo",
        &[
            "copy",
            &format!("oci-archive:{}:demo", s(&archive)),
            &format!("oci:{}:demo", s(&other)),
        ],
    )?;
    run(
        "oci-image-tool",
        &[
            "validate",
            "--type",
            "image",
            s(&other),
            "--ref",
            "name=demo",
        ],
    )?;
    // The copy kept our blobs bit for bit.
    for blob in &single.blobs {
        assert!(
            other.join("blobs/sha256").join(blob.digest.hex()).exists(),
            "{}",
            blob.digest
        );
    }
    Ok(())
}

#[test]
fn multi_arch_index_validates() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let store = tmp.path().join("store");
    fs::create_dir(&store)?;
    let amd = build_single(&store, "amd64", Compression::Gzip)?;
    let arm = build_single(&store, "arm64", Compression::Gzip)?;
    let index = Index::new(vec![
        amd.manifest.clone().with_platform(Platform::linux("amd64")),
        arm.manifest.clone().with_platform(Platform {
            variant: Some("v8".into()),
            ..Platform::linux("arm64")
        }),
    ]);
    let index_bytes = index.to_canonical_json()?;
    let index_blob = store_bytes(&store, &index_bytes)?;
    let mut blobs = amd.blobs.clone();
    blobs.extend(arm.blobs.iter().cloned());
    blobs.push(index_blob);
    let img = NamedImage {
        name: "multi".into(),
        top: Descriptor::of_bytes(media_types::INDEX, &index_bytes),
        blobs,
    };
    let layout = tmp.path().join("layout");
    write_layout(&layout, std::slice::from_ref(&img))?;

    let raw = run(
        "skopeo",
        &["inspect", "--raw", &format!("oci:{}:multi", s(&layout))],
    )?;
    assert_eq!(raw.trim_end().as_bytes(), index_bytes.as_slice());
    for arch in ["amd64", "arm64"] {
        let v: serde_json::Value = serde_json::from_str(&run(
            "skopeo",
            &[
                "--override-arch",
                arch,
                "inspect",
                &format!("oci:{}:multi", s(&layout)),
            ],
        )?)?;
        assert_eq!(v["Architecture"], arch);
    }
    run(
        "oci-image-tool",
        &[
            "validate",
            "--type",
            "image",
            s(&layout),
            "--ref",
            "name=multi",
        ],
    )?;

    // docker-archive of one platform of it.
    let docker = tmp.path().join("arm.tar");
    write_docker_archive(&docker, &img, Some("arm64"))?;
    let v: serde_json::Value = serde_json::from_str(&run(
        "skopeo",
        &[
            "--override-arch",
            "arm64",
            "inspect",
            &format!("docker-archive:{}", s(&docker)),
        ],
    )?)?;
    assert_eq!(v["Architecture"], "arm64");
    match write_docker_archive(&docker, &img, None) {
        Err(OciError::PlatformNotFound { available, .. }) => {
            assert_eq!(available, "linux/amd64, linux/arm64/v8");
        }
        other => return Err(format!("expected PlatformNotFound, got {other:?}").into()),
    }
    Ok(())
}

/// A layer with the host's busybox and the libraries it needs, so docker can run the image.
fn busybox_layer(
    store: &Path,
) -> Result<(Blob, Descriptor, Sha256Digest), Box<dyn std::error::Error>> {
    let ldd = run("ldd", &["/bin/busybox"])?;
    let mut files: Vec<String> = vec!["/bin/busybox".into()];
    for line in ldd.lines() {
        let path = line
            .split_whitespace()
            .find(|w| w.starts_with('/'))
            .map(str::to_owned);
        files.extend(path);
    }
    let mut entries = Vec::new();
    for f in &files {
        let size = fs::metadata(f)?.len();
        entries.push(LayerEntry::file(f.clone(), size, 0o755));
    }
    store_layer(
        store,
        &entries,
        &DirContent { root: "/".into() },
        Compression::Gzip,
    )
}

#[test]
fn docker_archive_loads() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let store = tmp.path().join("store");
    fs::create_dir(&store)?;
    let (bb_blob, bb_desc, bb_id) = busybox_layer(&store)?;
    // The two test layers on top: long names, odd modes and owners, a hardlink, symlinks.
    let (one, two, content) = layers();
    let (b1, d1, id1) = store_layer(&store, &one, &content, Compression::Gzip)?;
    let (b2, d2, id2) = store_layer(&store, &two, &content, Compression::Uncompressed)?;
    let mut cfg = ImageConfig::new(&Platform::linux("amd64"), EPOCH);
    cfg.config = cfg.config.merged(&ConfigOverrides {
        entrypoint: Some(vec!["/bin/busybox".into()]),
        cmd: Some(vec!["echo".into(), "hello from himg".into()]),
        env: [("GREETING".to_owned(), "hi".to_owned())]
            .into_iter()
            .collect(),
        ..ConfigOverrides::default()
    });
    cfg.push_layer(bb_id, "busybox", None);
    cfg.push_layer(id1, "one", None);
    cfg.push_layer(id2, "two", None);
    let (cfg_bytes, cfg_desc) = cfg.to_blob()?;
    let cfg_blob = store_bytes(&store, &cfg_bytes)?;
    let m_bytes = Manifest::new(cfg_desc, vec![bb_desc, d1, d2]).to_canonical_json()?;
    let m_blob = store_bytes(&store, &m_bytes)?;
    let name = "himg-oci-scratch-test/busybox:t1";
    let img = NamedImage {
        name: name.into(),
        top: Descriptor::of_bytes(media_types::MANIFEST, &m_bytes),
        blobs: vec![bb_blob, b1, b2, cfg_blob, m_blob],
    };
    validate_ref_name(name)?;
    let file = tmp.path().join("docker.tar");
    write_docker_archive(&file, &img, Some("amd64"))?;

    let v: serde_json::Value = serde_json::from_str(&run(
        "skopeo",
        &["inspect", &format!("docker-archive:{}", s(&file))],
    )?)?;
    assert_eq!(v["Env"], serde_json::json!(["GREETING=hi"]));
    assert_eq!(v["RepoTags"], serde_json::json!([]));

    // zstd layers are refused with a clear error.
    let zst = build_single(&store, "amd64", Compression::Zstd)?;
    match write_docker_archive(&tmp.path().join("z.tar"), &single_image("z", &zst), None) {
        Err(e @ OciError::DockerArchiveCompression { .. }) => {
            assert!(e.to_string().contains("tar+zstd"), "{e}");
        }
        other => return Err(format!("expected DockerArchiveCompression, got {other:?}").into()),
    }

    // This machine kind runs a Docker engine: not reaching it is a failure, never a skip.
    if !Command::new("docker")
        .arg("info")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return Err("a Docker engine runs on this machine, but `docker info` fails".into());
    }
    let loaded = run("docker", &["load", "-i", s(&file)])?;
    assert!(loaded.contains(name), "{loaded}");
    let result = (|| -> TestResult {
        let inspect: serde_json::Value =
            serde_json::from_str(&run("docker", &["image", "inspect", name])?)?;
        assert_eq!(
            inspect[0]["RootFS"]["Layers"],
            serde_json::json!([bb_id.to_string(), id1.to_string(), id2.to_string()])
        );
        assert_eq!(inspect[0]["Id"], Sha256Digest::of(&cfg_bytes).to_string());
        assert_eq!(inspect[0]["Created"], "2023-11-14T22:13:20Z");
        match run("docker", &["run", "--rm", "--network", "none", name]) {
            Ok(out) => {
                assert_eq!(out, "hello from himg\n");
                let long = format!("/opt/{}/{}/data.txt", "d".repeat(90), "e".repeat(90));
                let script = format!(
                    "busybox cat {long}; busybox stat -c '%a %u:%g %h %n' /srv /var/lib/app /etc/app/conf \
                     /srv/index.html /usr/bin/app; busybox readlink /usr/bin/app-link; busybox readlink /opt/{}",
                    "l".repeat(120)
                );
                let out = run(
                    "docker",
                    &[
                        "run",
                        "--rm",
                        "--network",
                        "none",
                        name,
                        "sh",
                        "-c",
                        &script,
                    ],
                )?;
                let expected = format!(
                    "long path\n2775 10001:10001 2 /srv\n1770 10001:10001 2 /var/lib/app\n\
                     640 10001:10001 1 /etc/app/conf\n444 10001:10001 2 /srv/index.html\n\
                     755 0:0 1 /usr/bin/app\napp\n/{}\n",
                    "t".repeat(130)
                );
                assert_eq!(out, expected);
                eprintln!("docker load + inspect + run: ok");
            }
            // Loading is what this module promises; running depends on the sandbox.
            Err(e) => eprintln!("docker run not possible here: {e}"),
        }
        Ok(())
    })();
    let _ = run("docker", &["rmi", "-f", name]);
    result?;

    // podman loads the same archive under the same name (it reads index.json's ref name), with the
    // same layers and config.
    let loaded = run("podman", &["load", "-i", s(&file)])?;
    assert!(loaded.contains(&format!("localhost/{name}")), "{loaded}");
    let result = (|| -> TestResult {
        let inspect: serde_json::Value =
            serde_json::from_str(&run("podman", &["image", "inspect", name])?)?;
        assert_eq!(
            inspect[0]["RootFS"]["Layers"],
            serde_json::json!([bb_id.to_string(), id1.to_string(), id2.to_string()])
        );
        assert_eq!(
            inspect[0]["Id"],
            Sha256Digest::of(&cfg_bytes).hex().to_string()
        );
        eprintln!("podman load + inspect: ok");
        Ok(())
    })();
    let _ = run("podman", &["rmi", "-f", name]);
    result
}
