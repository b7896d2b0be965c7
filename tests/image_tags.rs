//! `himg build --tag REPO[:TAG]`: the name the output gives the built image. A docker-archive
//! tagged `registry.example/team/app:1.2` loads in `docker load` and `podman load` under exactly
//! that name; an OCI layout holds one ref name per tag (what skopeo reads); tags are checked
//! against the Docker reference grammar; `--tag` names one image; `--image nginx:1.0` is told
//! about `--tag`.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Output};

use common::{Project, assert_success, require_tool, run_tool};
use serde_json::Value;

const TAG: &str = "registry.example/team/app:1.2";

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Builds `examples/prebuilt.himg` as a docker-archive tagged [`TAG`].
fn tagged_archive(p: &Project) -> std::path::PathBuf {
    let o = p.himg(&[
        "build",
        "examples/prebuilt.himg",
        "--format",
        "docker-archive",
        "--out",
        "app.tar",
        "--tag",
        TAG,
    ]);
    assert_success(&o, "build --tag");
    p.path("app.tar")
}

/// The archive's `manifest.json` and `index.json`, read with tar.
fn archive_json(tar: &std::path::Path, member: &str) -> Value {
    let text = run_tool(Command::new("tar").arg("-xOf").arg(tar).arg(member));
    serde_json::from_str(&text).unwrap()
}

#[test]
fn a_tagged_docker_archive_names_the_image() {
    let p = Project::new();
    let tar = tagged_archive(&p);
    let manifest = archive_json(&tar, "manifest.json");
    assert_eq!(
        manifest[0]["RepoTags"],
        serde_json::json!([TAG]),
        "{manifest}"
    );
    let index = archive_json(&tar, "index.json");
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"], TAG,
        "{index}"
    );
}

#[test]
fn docker_loads_a_tagged_archive_under_that_name() {
    require_tool("docker");
    let p = Project::new();
    let tar = tagged_archive(&p);
    let _ = Command::new("docker").args(["rmi", "-f", TAG]).output();
    let loaded = run_tool(Command::new("docker").args(["load", "-i"]).arg(&tar));
    assert!(loaded.contains(&format!("Loaded image: {TAG}")), "{loaded}");
    let tags = run_tool(Command::new("docker").args([
        "image",
        "inspect",
        "--format",
        "{{json .RepoTags}}",
        TAG,
    ]));
    let _ = Command::new("docker").args(["rmi", "-f", TAG]).output();
    assert_eq!(tags.trim(), format!("[\"{TAG}\"]"));
}

#[test]
fn podman_loads_a_tagged_archive_under_that_name() {
    require_tool("podman");
    let p = Project::new();
    let tar = tagged_archive(&p);
    let _ = Command::new("podman").args(["rmi", "-f", TAG]).output();
    let loaded = run_tool(Command::new("podman").args(["load", "-i"]).arg(&tar));
    assert!(loaded.contains(TAG), "{loaded}");
    let names = run_tool(Command::new("podman").args([
        "image",
        "inspect",
        "--format",
        "{{json .RepoTags}}",
        TAG,
    ]));
    let _ = Command::new("podman").args(["rmi", "-f", TAG]).output();
    assert_eq!(names.trim(), format!("[\"{TAG}\"]"));
}

#[test]
fn an_oci_layout_holds_one_ref_name_per_tag() {
    require_tool("skopeo");
    let p = Project::new();
    let o = p.himg(&[
        "build",
        "examples/prebuilt.himg",
        "--out",
        "layout",
        "--tag",
        TAG,
        "--tag",
        "app",
    ]);
    assert_success(&o, "build --tag --tag");
    let index: Value =
        serde_json::from_slice(&std::fs::read(p.path("layout/index.json")).unwrap()).unwrap();
    let names: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            m["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(names, ["app:latest", TAG], "{index}");
    let digests: std::collections::BTreeSet<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap())
        .collect();
    assert_eq!(digests.len(), 1, "one image under two names: {index}");
    let layout = p.path("layout");
    let inspect = run_tool(
        Command::new("skopeo")
            .arg("inspect")
            .arg(format!("oci:{}:{TAG}", layout.display())),
    );
    assert!(inspect.contains("amd64"), "{inspect}");

    // Without --tag: the declared name, as before.
    assert_success(
        &p.himg(&["build", "examples/prebuilt.himg", "--out", "plain"]),
        "build",
    );
    let index: Value =
        serde_json::from_slice(&std::fs::read(p.path("plain/index.json")).unwrap()).unwrap();
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "hello"
    );
}

#[test]
fn tags_are_checked_and_name_one_image() {
    let p = Project::new();
    for (bad, rule) in [
        ("App:1", "lowercase"),
        ("app:-1", "a tag is"),
        ("app@sha256:0000", "not a digest"),
        ("team//app", "repository path component"),
        ("registry_example:5000/app", "a registry host is"),
    ] {
        let o = p.himg(&["build", "examples/prebuilt.himg", "--tag", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", stderr(&o));
        assert!(stderr(&o).contains(rule), "{bad}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("[HOST[:PORT]/]PATH[:TAG]"),
            "{}",
            stderr(&o)
        );
    }

    std::fs::write(
        p.path("examples/two.himg"),
        "image \"a\" {\n  file \"/a\" { text = \"a\" }\n}\n\nimage \"b\" {\n  file \"/b\" { text = \"b\" }\n}\n",
    )
    .unwrap();
    let o = p.himg(&["build", "examples/two.himg", "--tag", "app:1"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--tag names one image, but this build has 2 (a, b)"),
        "{}",
        stderr(&o)
    );
    let o = p.himg(&[
        "build",
        "examples/two.himg",
        "--image",
        "b",
        "--tag",
        "app:1",
        "--out",
        "b",
    ]);
    assert_success(&o, "build --image --tag");
    let index: Value =
        serde_json::from_slice(&std::fs::read(p.path("b/index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1, "{index}");
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "app:1"
    );

    // `--image` with what looks like a reference: pointed at --tag.
    let o = p.himg(&["build", "examples/prebuilt.himg", "--image", "nginx:1.0"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("no image named `nginx:1.0`"), "{err}");
    assert!(
        err.contains("--image selects an image the file declares"),
        "{err}"
    );
    assert!(err.contains("--tag nginx:1.0"), "{err}");
}
