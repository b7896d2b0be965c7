//! The image reader against real builds: the view of examples/hello.himg (files, modes, owners,
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
        "examples/hello.himg",
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
