//! A damaged store (issue 11, item 4): one flipped byte in an OCI blob, or in a file blob a layer
//! is built from, is never shipped — the build fails naming the object — and
//! `himg store verify --repair` plus a rebuild gives the clean image, the digest a fresh store
//! builds.

#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{Project, assert_success, image, layer_digests};
use sha2::Digest as _;

/// Flips one byte in the middle of a (read-only) store object, in place.
fn flip(path: &Path) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut bytes = std::fs::read(path).unwrap();
    let i = bytes.len() / 2;
    bytes[i] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o444)).unwrap();
}

fn oci_blob(project: &Project, digest: &str) -> PathBuf {
    project
        .store
        .join("v1/oci/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

fn digest_of(report: &serde_json::Value) -> String {
    image(report, "hello")["digest"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Every blob of the layout at `dir` hashes to its name.
fn assert_layout_sound(dir: &Path) {
    for entry in std::fs::read_dir(dir.join("blobs/sha256")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let actual = hex::encode(sha2::Sha256::digest(std::fs::read(&path).unwrap()));
        assert_eq!(actual, name, "layout blob {} is corrupt", path.display());
    }
}

/// `store verify` fails naming `what`; `--repair` fixes it; `verify` is then clean.
fn repair(project: &Project, what: &str) {
    let o = project.himg(&["store", "verify"]);
    assert_eq!(o.status.code(), Some(4), "verify should find the damage");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(what), "verify does not name `{what}`: {err}");
    assert!(err.contains("--repair"), "{err}");
    let o = project.himg(&["store", "verify", "--repair"]);
    assert_success(&o, "store verify --repair");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(what), "repair does not name `{what}`: {err}");
    assert_success(
        &project.himg(&["store", "verify"]),
        "store verify after repair",
    );
}

/// The build fails (exit 3), names the object and suggests the repair; nothing was written.
fn assert_refused(project: &Project, file: &str, out: &str, what: &str) {
    let o = project.himg(&["build", file, "--out", out]);
    assert!(
        !o.status.success(),
        "a build over a corrupt object succeeded:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(what),
        "the error does not name `{what}`: {err}"
    );
    assert!(err.contains("corrupt"), "{err}");
    assert!(err.contains("himg store verify --repair"), "{err}");
    assert!(
        !project.path(out).join("index.json").exists(),
        "a layout was written"
    );
}

#[test]
fn a_flipped_oci_blob_is_never_shipped_and_repair_restores_the_clean_image() {
    let p = Project::new();
    let first = p.build("examples/prebuilt.himg", "out1");
    let clean = digest_of(&first);
    let layer = layer_digests(image(&first, "hello"))[0].clone();
    flip(&oci_blob(&p, &layer));

    // A no-op build would hard-link the damaged blob into a new layout: refused.
    let hex = layer.trim_start_matches("sha256:");
    assert_refused(&p, "examples/prebuilt.himg", "out2", hex);
    repair(&p, hex);

    let again = p.build("examples/prebuilt.himg", "out3");
    assert_eq!(digest_of(&again), clean);
    assert_layout_sound(&p.path("out3"));
    // The first layout still holds a link to the damaged file: a rebuild into it replaces it.
    let again = p.build("examples/prebuilt.himg", "out1");
    assert_eq!(digest_of(&again), clean);
    assert_layout_sound(&p.path("out1"));
}

#[test]
fn a_flipped_file_blob_is_never_packed_and_repair_restores_the_clean_image() {
    let p = Project::new();
    let gzip = p.build("examples/prebuilt.himg", "out-gzip");
    // The same image with zstd layers: its layers are packed again from the same file blobs.
    let text = std::fs::read_to_string(p.path("examples/prebuilt.himg")).unwrap();
    let zstd_text = text.replacen(
        "architectures = [\"amd64\"]",
        "architectures = [\"amd64\"]\n  compression = \"zstd\"",
        1,
    );
    assert_ne!(text, zstd_text);
    std::fs::write(p.path("examples/hello-zstd.himg"), zstd_text).unwrap();

    // A fresh store gives the clean digest of the zstd image.
    let fresh_store = p.path("fresh-store");
    let o = p.himg_in(
        p.dir.path(),
        &fresh_store,
        &[
            "build",
            "examples/hello-zstd.himg",
            "--out",
            "out-fresh",
            "--json",
        ],
    );
    assert_success(&o, "build in a fresh store");
    let fresh: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();

    // The blob of the hello program, as the copy stored it.
    let program = std::fs::read(p.path("examples/hello/build/hello")).unwrap();
    let blob = himg_store::B3Digest::of(&program);
    let hex = blob.to_hex();
    flip(&p.store.join("v1/blobs/b3").join(&hex[..2]).join(&hex[2..]));

    assert_refused(&p, "examples/hello-zstd.himg", "out-zstd", &hex);
    repair(&p, &hex);

    let zstd = p.build("examples/hello-zstd.himg", "out-zstd");
    assert_eq!(digest_of(&zstd), digest_of(&fresh));
    assert_layout_sound(&p.path("out-zstd"));
    let again = p.build("examples/prebuilt.himg", "out-gzip-2");
    assert_eq!(digest_of(&again), digest_of(&gzip));
}
