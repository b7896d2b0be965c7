//! The image reader against real builds: the view of examples/prebuilt.himg (files, modes, owners,
//! layers), `extract_rootfs` against `umoci unpack`, the same views from a layout, an oci-archive
//! and a docker-archive, and tampered blobs refused.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use common::{Project, assert_success, require_tool, run_tool};
use himg::image::{FileKind, ImageError, ImageSource, ImageView};
use sha2::Digest as _;

fn build(project: &Project, format: &str, out: &str) {
    let output = project.himg(&[
        "build",
        "examples/prebuilt.himg",
        "--format",
        format,
        "--out",
        out,
    ]);
    assert_success(&output, "himg build");
}

fn only_view(path: &Path) -> (ImageSource, ImageView) {
    let source = ImageSource::open(path).unwrap();
    let mut views = source.images().unwrap();
    assert_eq!(views.len(), 1, "one image in {}", path.display());
    // The manifest-only listing names the same image without reading its layers.
    let manifests = source.manifests().unwrap();
    assert_eq!(manifests.len(), 1);
    assert_eq!(manifests[0].digest, views[0].digest);
    assert_eq!(manifests[0].name, views[0].name);
    assert_eq!(manifests[0].config, views[0].config);
    (source, views.remove(0))
}

/// Every path below `root`, relative, sorted.
fn walk(root: &Path) -> BTreeSet<String> {
    walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .map(|e| {
            let e = e.unwrap();
            e.path()
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

#[test]
fn hello_view_extract_and_archives() {
    let project = Project::new();
    build(&project, "oci", "out");
    let (source, view) = only_view(&project.path("out"));

    // Identity and config.
    assert_eq!(view.name.as_deref(), Some("hello"));
    assert!(view.digest.starts_with("sha256:"));
    assert_eq!(view.config.architecture, "amd64");
    assert!(view.config.config.user.is_some());
    assert_eq!(view.config.config.entrypoint, ["/usr/local/bin/hello"]);
    assert!(view.packages.is_empty());

    // Files, modes, owners.
    let bin = &view.files["usr/local/bin/hello"];
    assert_eq!(
        (bin.kind.clone(), bin.mode & 0o7777),
        (FileKind::File, 0o755)
    );
    let program = std::fs::read(project.path("examples/hello/build/hello")).unwrap();
    assert_eq!(bin.size, program.len() as u64);
    assert_eq!(
        bin.sha256.as_deref(),
        Some(format!("sha256:{}", hex::encode(sha2::Sha256::digest(&program))).as_str())
    );
    assert_eq!(
        view.files["usr/bin/hello"].kind,
        FileKind::Symlink {
            target: "/usr/local/bin/hello".into()
        }
    );
    let var = &view.files["var/lib/hello"];
    assert_eq!(
        (var.kind.clone(), var.mode, var.uid, var.gid),
        (FileKind::Dir, 0o750, 10001, 10001)
    );
    let html: Vec<_> = view
        .files
        .iter()
        .filter(|(p, _)| p.starts_with("srv/www/") && p.ends_with(".html"))
        .collect();
    assert!(!html.is_empty());
    assert!(html.iter().all(|(_, e)| e.uid == 10001));
    assert!(!view.files.keys().any(|p| p.contains("drafts/")));
    assert!(view.files.contains_key("etc/passwd"));

    // Layers: every layer's paths are in the view or deleted later; the binary's layer is `app`.
    assert!(view.layers.len() >= 2);
    for l in &view.layers {
        assert!(l.digest.starts_with("sha256:") && l.diff_id.starts_with("sha256:"));
        assert!(l.size > 0);
        assert!(
            l.created_by
                .as_deref()
                .unwrap_or("")
                .starts_with("himg: layer "),
            "{l:?}"
        );
    }
    let app = &view.layers[bin.layer];
    assert!(
        app.created_by
            .as_deref()
            .unwrap_or("")
            .starts_with("himg: layer app")
    );
    assert!(app.paths.contains(&"usr/local/bin/hello".to_string()));
    assert!(app.content_size >= program.len() as u64);
    let all_paths: BTreeSet<&String> = view.layers.iter().flat_map(|l| &l.paths).collect();
    assert!(view.files.keys().all(|p| all_paths.contains(p)));

    // read_file: content, symlinks are not regular files, absent paths.
    assert_eq!(
        source
            .read_file(&view, "/usr/local/bin/hello")
            .unwrap()
            .unwrap(),
        program
    );
    let conf = source.read_file(&view, "etc/hello.conf").unwrap().unwrap();
    assert!(String::from_utf8_lossy(&conf).contains("greeting = \"hi\""));
    assert_eq!(source.read_file(&view, "usr/bin/hello").unwrap(), None);
    assert_eq!(source.read_file(&view, "nope").unwrap(), None);

    // extract_rootfs gives exactly umoci's file list.
    let mine = project.path("rootfs");
    source.extract_rootfs(&view, &mine).unwrap();
    require_tool("umoci");
    let mut cmd = Command::new("umoci");
    cmd.arg("unpack");
    if !rustix_is_root() {
        cmd.arg("--rootless");
    }
    cmd.arg("--image")
        .arg(format!("{}:hello", project.path("out").display()))
        .arg(project.path("bundle"));
    run_tool(&mut cmd);
    let theirs = walk(&project.path("bundle/rootfs"));
    assert_eq!(walk(&mine), theirs);
    assert_eq!(theirs, view.files.keys().cloned().collect::<BTreeSet<_>>());
    use std::os::unix::fs::PermissionsExt;
    let md = std::fs::metadata(mine.join("var/lib/hello")).unwrap();
    assert_eq!(md.permissions().mode() & 0o7777, 0o750);
    assert_eq!(
        std::fs::read(mine.join("usr/local/bin/hello")).unwrap(),
        program
    );
    // A non-empty destination is refused.
    assert!(matches!(
        source.extract_rootfs(&view, &mine),
        Err(ImageError::DestinationNotEmpty { .. })
    ));

    // The same views from the archives (a docker-archive names the image by its RepoTags).
    build(&project, "oci-archive", "hello-oci.tar");
    let (_, oci_view) = only_view(&project.path("hello-oci.tar"));
    assert_eq!(oci_view, view);
    build(&project, "docker-archive", "hello-docker.tar");
    let (docker_source, docker_view) = only_view(&project.path("hello-docker.tar"));
    assert_eq!(docker_view.name.as_deref(), Some("hello:latest"));
    assert_eq!(
        ImageView {
            name: view.name.clone(),
            ..docker_view.clone()
        },
        view
    );
    assert_eq!(
        docker_source
            .read_file(&docker_view, "usr/local/bin/hello")
            .unwrap()
            .unwrap(),
        program
    );
}

fn rustix_is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

#[test]
fn tampered_blobs_are_refused() {
    let project = Project::new();
    build(&project, "oci", "out");
    let (_, view) = only_view(&project.path("out"));
    let blob = |digest: &str| {
        project
            .path("out/blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    };
    // Flip one byte in the middle of the biggest layer (the program).
    let big = view.layers.iter().max_by_key(|l| l.size).unwrap();
    let path = blob(&big.digest);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::remove_file(&path).unwrap(); // blobs may be hardlinked to the store: never write in place
    std::fs::write(&path, &bytes).unwrap();
    let err = ImageSource::open(&project.path("out"))
        .unwrap()
        .images()
        .unwrap_err();
    assert!(
        matches!(&err, ImageError::BlobDigestMismatch { digest, .. } if *digest == big.digest),
        "{err}"
    );
    assert!(err.to_string().contains(&big.digest), "{err}");

    // A config edited in place is refused too.
    build(&project, "oci", "out2");
    let (source2, view2) = only_view(&project.path("out2"));
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(project.path("out2/index.json")).unwrap()).unwrap();
    let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            project
                .path("out2/blobs/sha256")
                .join(&manifest_digest[7..]),
        )
        .unwrap(),
    )
    .unwrap();
    let config_path = project
        .path("out2/blobs/sha256")
        .join(&manifest["config"]["digest"].as_str().unwrap()[7..]);
    let text = std::fs::read_to_string(&config_path)
        .unwrap()
        .replace("platform", "platfXrm");
    std::fs::remove_file(&config_path).unwrap();
    std::fs::write(&config_path, text).unwrap();
    let err = source2.images().unwrap_err();
    assert!(
        matches!(err, ImageError::BlobDigestMismatch { .. }),
        "{err}"
    );
    drop(view2);
}

/// A hand-made OCI layout: layers written entry by entry with the tar crate.
mod handmade {
    use std::io::Write;
    use std::path::Path;

    use sha2::Digest as _;

    pub enum Comp {
        Plain,
        Gzip,
        Zstd,
    }

    pub enum E<'a> {
        Dir(&'a str, u32),
        File(&'a str, &'a [u8], u32),
        Link(&'a str, &'a str),
        Hard(&'a str, &'a str),
    }

    fn sha(b: &[u8]) -> String {
        format!("sha256:{}", hex::encode(sha2::Sha256::digest(b)))
    }

    fn blob(dir: &Path, bytes: &[u8]) -> (String, usize) {
        let d = sha(bytes);
        let p = dir.join("blobs/sha256").join(&d[7..]);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
        (d, bytes.len())
    }

    pub fn tar(entries: &[E<'_>]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for e in entries {
            let mut h = tar::Header::new_ustar();
            h.set_mtime(0);
            h.set_uid(0);
            h.set_gid(0);
            match e {
                E::Dir(p, m) => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_mode(*m);
                    h.set_size(0);
                    b.append_data(&mut h, p, &[][..]).unwrap();
                }
                E::File(p, c, m) => {
                    h.set_mode(*m);
                    h.set_size(c.len() as u64);
                    b.append_data(&mut h, p, *c).unwrap();
                }
                E::Link(p, t) => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_mode(0o777);
                    h.set_size(0);
                    b.append_link(&mut h, p, t).unwrap();
                }
                E::Hard(p, t) => {
                    h.set_entry_type(tar::EntryType::Link);
                    h.set_mode(0o644);
                    h.set_size(0);
                    b.append_link(&mut h, p, t).unwrap();
                }
            }
        }
        b.into_inner().unwrap()
    }

    /// Writes one image named `name` with these layers into the layout `dir` (index.json rewritten
    /// with every image written so far).
    pub fn image(
        dir: &Path,
        name: &str,
        layers: &[(Comp, Vec<u8>)],
        index: &mut Vec<serde_json::Value>,
    ) {
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        let mut descs = Vec::new();
        let mut diff_ids = Vec::new();
        for (comp, plain) in layers {
            diff_ids.push(sha(plain));
            let (bytes, mt) = match comp {
                Comp::Plain => (plain.clone(), "application/vnd.oci.image.layer.v1.tar"),
                Comp::Gzip => {
                    let mut e =
                        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                    e.write_all(plain).unwrap();
                    (
                        e.finish().unwrap(),
                        "application/vnd.oci.image.layer.v1.tar+gzip",
                    )
                }
                Comp::Zstd => (
                    zstd::encode_all(plain.as_slice(), 3).unwrap(),
                    "application/vnd.oci.image.layer.v1.tar+zstd",
                ),
            };
            let (d, s) = blob(dir, &bytes);
            descs.push(serde_json::json!({"mediaType": mt, "digest": d, "size": s}));
        }
        let history: Vec<_> = (0..layers.len())
            .map(|i| serde_json::json!({"created_by": format!("layer {i}")}))
            .collect();
        let config = serde_json::json!({
            "architecture": "amd64", "os": "linux", "config": {},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": history,
        });
        let (cd, cs) = blob(dir, &serde_json::to_vec(&config).unwrap());
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
            "layers": descs,
        });
        let (md, ms) = blob(dir, &serde_json::to_vec(&manifest).unwrap());
        index.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
            "annotations": {"org.opencontainers.image.ref.name": name},
        }));
        let idx = serde_json::json!({"schemaVersion": 2, "manifests": index});
        std::fs::write(dir.join("index.json"), serde_json::to_vec(&idx).unwrap()).unwrap();
    }
}

#[test]
fn whiteouts_links_modes_and_compressions_match_umoci() {
    use handmade::{Comp, E};
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    std::fs::create_dir_all(&layout).unwrap();
    let l0 = handmade::tar(&[
        E::Dir("etc/", 0o755),
        E::File("etc/a", b"a\n", 0o644),
        E::File("etc/b", b"b\n", 0o600),
        E::Hard("etc/hard", "etc/a"),
        E::Dir("opt/", 0o755),
        E::Dir("opt/x/", 0o755),
        E::File("opt/x/y", b"y", 0o644),
        E::Dir("usr/", 0o755),
        E::Dir("usr/bin/", 0o755),
        E::Link("bin", "usr/bin"),
        E::File("usr/bin/su", b"su", 0o4755),
        E::Dir("tmp/", 0o1777),
        E::Dir("ro/", 0o555),
        E::File("ro/f", b"f", 0o444),
    ]);
    let l1 = handmade::tar(&[
        E::File("etc/.wh.b", b"", 0o644),
        E::File("opt/.wh..wh..opq", b"", 0o644),
        E::File("opt/new", b"new", 0o644),
        E::File("bin/ls", b"ls", 0o755),
        E::File("etc/c", b"c", 0o640),
        E::File("etc/a", b"replaced\n", 0o644),
    ]);
    let l2 = handmade::tar(&[E::File("deep/er/file", b"implicit parents", 0o644)]);
    let mut index = Vec::new();
    handmade::image(
        &layout,
        "mixed",
        &[
            (Comp::Gzip, l0.clone()),
            (Comp::Plain, l1.clone()),
            (Comp::Gzip, l2.clone()),
        ],
        &mut index,
    );
    handmade::image(
        &layout,
        "zstd",
        &[(Comp::Zstd, l0), (Comp::Zstd, l1), (Comp::Zstd, l2)],
        &mut index,
    );
    let evil = handmade::tar(&[E::Link("evil", "../../.."), E::File("evil/x", b"x", 0o644)]);
    handmade::image(&layout, "evil", &[(Comp::Plain, evil)], &mut index);

    let source = ImageSource::open(&layout).unwrap();
    let err = source.images().unwrap_err();
    assert!(matches!(err, ImageError::EscapingLink { .. }), "{err:?}");
    // Drop the evil image again.
    index.pop();
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": index})).unwrap(),
    )
    .unwrap();
    let views = source.images().unwrap();
    assert_eq!(views.len(), 2);
    let v = &views[0];
    let keys: Vec<&str> = v.files.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "bin",
            "deep",
            "deep/er",
            "deep/er/file",
            "etc",
            "etc/a",
            "etc/c",
            "etc/hard",
            "opt",
            "opt/new",
            "ro",
            "ro/f",
            "tmp",
            "usr",
            "usr/bin",
            "usr/bin/ls",
            "usr/bin/su"
        ]
    );
    assert_eq!(v.files["usr/bin/su"].mode, 0o4755);
    assert_eq!(v.files["tmp"].mode, 0o1777);
    assert_eq!(
        v.files["etc/hard"].kind,
        FileKind::Hardlink {
            target: "etc/a".into()
        }
    );
    assert_eq!(v.layers[1].deletions, ["etc/b", "opt/x", "opt/x/y"]);
    assert_eq!(
        v.layers[1].paths,
        ["etc/a", "etc/c", "opt/new", "usr/bin/ls"]
    );
    assert_eq!(v.layers[2].paths, ["deep", "deep/er", "deep/er/file"]);
    assert_eq!(v.layers[0].created_by.as_deref(), Some("layer 0"));
    assert_eq!(source.read_file(v, "etc/hard").unwrap().unwrap(), b"a\n");
    assert_eq!(
        source.read_file(v, "etc/a").unwrap().unwrap(),
        b"replaced\n"
    );
    assert_eq!(
        source.read_file(v, "bin/ls").unwrap(),
        None,
        "bin is a symlink, not followed"
    );
    assert_eq!(source.read_file(v, "usr/bin/ls").unwrap().unwrap(), b"ls");
    // The zstd image reads the same.
    let z = &views[1];
    assert_eq!(z.files, v.files);
    assert_eq!(z.layers[1].deletions, v.layers[1].deletions);

    // Unpacked: umoci's file list, modes kept, read-only dirs still removable.
    let mine = tmp.path().join("mine");
    source.extract_rootfs(v, &mine).unwrap();
    let zmine = tmp.path().join("zmine");
    source.extract_rootfs(z, &zmine).unwrap();
    assert_eq!(walk(&mine), walk(&zmine));
    require_tool("umoci");
    let mut cmd = Command::new("umoci");
    cmd.arg("unpack");
    if !rustix_is_root() {
        cmd.arg("--rootless");
    }
    cmd.arg("--image")
        .arg(format!("{}:mixed", layout.display()))
        .arg(tmp.path().join("bundle"));
    run_tool(&mut cmd);
    assert_eq!(walk(&mine), walk(&tmp.path().join("bundle/rootfs")));
    let mode = |p: &str| {
        std::fs::symlink_metadata(mine.join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(
        (mode("usr/bin/su"), mode("tmp"), mode("ro"), mode("etc/c")),
        (0o4755, 0o1777, 0o555, 0o640)
    );
    assert_eq!(std::fs::read(mine.join("etc/hard")).unwrap(), b"a\n");
    assert_eq!(
        std::fs::read_link(mine.join("bin")).unwrap(),
        Path::new("usr/bin")
    );
    // A legacy docker-archive (skopeo's: `manifest.json`, uncompressed layers, no OCI manifest)
    // reads to the same files; its digest is the config digest (Docker's image ID).
    require_tool("skopeo");
    let legacy = tmp.path().join("legacy.tar");
    run_tool(
        Command::new("skopeo")
            .arg("copy")
            .arg(format!("oci:{}:mixed", layout.display()))
            .arg(format!("docker-archive:{}:mixed:latest", legacy.display())),
    );
    let (legacy_source, lv) = only_view(&legacy);
    assert_eq!(legacy_source.kind(), himg::image::SourceKind::DockerArchive);
    assert_eq!(lv.files, v.files);
    assert_eq!(lv.layers.len(), 3);
    for (a, b) in lv.layers.iter().zip(&v.layers) {
        assert_eq!(
            (&a.diff_id, &a.paths, &a.deletions),
            (&b.diff_id, &b.paths, &b.deletions)
        );
    }
    assert_eq!(
        legacy_source.read_file(&lv, "etc/hard").unwrap().unwrap(),
        b"a\n"
    );
    for d in [&mine, &zmine] {
        std::fs::set_permissions(d.join("ro"), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}
