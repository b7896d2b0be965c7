//! Live (issue 9/11): the multi-stage examples of three languages — a Rust service with vendored
//! crates (`examples/rust-service.himg`), a Python app with pinned wheels in a venv
//! (`examples/python-app.himg`) and a Go program with modules (`examples/go-app.himg`) — each
//! built from its toolchain image into a minimal runtime image, twice in fresh stores with the same
//! digest, and run under Docker. Editing the application reruns only its own build, never the
//! dependencies'. Needs the host's Debian mirror, and the crate and wheel registries through cargo's and pip's
//! own configuration; fails without them.

mod common;

use std::process::Command;

use common::{Project, assert_success, image, require_tool, run_tool};
use serde_json::Value;

/// A toolchain's store takes gigabytes (a C and Rust compiler, Go, CPython): the tests of this file
/// hold one at a time, so that the suite fits a small CI disk.
fn one_toolchain_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `himg build FILE --locked --image IMAGE --json` in `store`, writing `out`.
fn build(project: &Project, file: &str, image_name: &str, store: &str, out: &str) -> Value {
    let o = project.himg_in(
        &project.path(""),
        &project.path(store),
        &[
            "build",
            file,
            "--locked",
            "--image",
            image_name,
            "--no-sbom",
            "--out",
            out,
            "--json",
        ],
    );
    assert_success(&o, &format!("himg build {file} (needs the Debian mirror)"));
    serde_json::from_slice(&o.stdout).expect("json")
}

/// Each build's outcome by name (`built`, `cached`, …).
fn outcomes(report: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = report["builds"]
        .as_array()
        .expect("builds")
        .iter()
        .map(|b| {
            (
                b["name"].as_str().unwrap_or_default().to_owned(),
                b["outcome"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

/// Builds `file` twice in two fresh stores (same digest), then writes a docker-archive of it from
/// the first store, runs it under Docker with `args` and returns what it printed.
fn twice_then_docker(
    project: &Project,
    file: &str,
    image_name: &str,
    args: &[&str],
) -> (Value, String) {
    require_tool("bwrap");
    // The second store is built first and removed before the first is made: a toolchain's store
    // takes gigabytes.
    let b = build(project, file, image_name, "store-b", "b");
    for dir in ["store-b", "b"] {
        std::fs::remove_dir_all(project.path(dir)).expect("remove the second store");
    }
    let a = build(project, file, image_name, "store-a", "a");
    assert_eq!(
        image(&a, image_name)["digest"],
        image(&b, image_name)["digest"],
        "{file}: two fresh stores, two digests"
    );
    require_tool("docker");
    let tar = format!("{image_name}.tar");
    let o = project.himg_in(
        &project.path(""),
        &project.path("store-a"),
        &[
            "build",
            file,
            "--locked",
            "--image",
            image_name,
            "--no-sbom",
            "--format",
            "docker-archive",
            "--out",
            &tar,
        ],
    );
    assert_success(&o, "docker-archive");
    let loaded = run_tool(
        Command::new("docker")
            .args(["load", "-i"])
            .arg(project.path(&tar)),
    );
    let tag = format!("{image_name}:latest");
    assert!(loaded.contains(&tag), "{loaded}");
    let mut cmd = Command::new("docker");
    cmd.args(["run", "--rm", "--network", "none", &tag])
        .args(args);
    let printed = run_tool(&mut cmd);
    let _ = Command::new("docker").args(["rmi", "-f", &tag]).output();
    (a, printed)
}

#[test]
fn rust_service_with_vendored_crates() {
    let _one_at_a_time = one_toolchain_at_a_time();
    let project = Project::new();
    let (first, printed) = twice_then_docker(
        &project,
        "examples/rust-service.himg",
        "greeter",
        &["--once"],
    );
    assert_eq!(
        printed,
        "{\"greeting\":\"hello from rust\",\"requests\":0,\"ratio\":0.5}\n"
    );
    assert_eq!(
        outcomes(&first),
        pairs(&[("deps", "built"), ("greeter", "built"), ("vendor", "built")]),
        "{first}"
    );

    // Edit the service: only its own build reruns; the crates are neither fetched nor compiled.
    let main = project.path("examples/rust-service/src/main.rs");
    let text = std::fs::read_to_string(&main).expect("read main.rs");
    std::fs::write(&main, text.replace("hello from rust", "hi from rust")).expect("edit");
    let edited = build(
        &project,
        "examples/rust-service.himg",
        "greeter",
        "store-a",
        "a",
    );
    assert_eq!(
        outcomes(&edited),
        pairs(&[
            ("deps", "reused"),
            ("greeter", "built"),
            ("vendor", "reused")
        ]),
        "{edited}"
    );
    let mut kinds = edited["built_by_kind"].clone();
    // The new image is analysed and judged too (its one new layer scanned): not a rebuild.
    for analysis in ["analysis", "layer-scan"] {
        kinds.as_object_mut().expect("kinds").remove(analysis);
    }
    assert_eq!(
        kinds,
        serde_json::json!({"build": 1, "copy": 1, "select": 1, "layer": 1, "config": 1, "manifest": 1}),
        "{edited}"
    );
    let o = project.himg_in(
        &project.path(""),
        &project.path("store-a"),
        &["test", "examples/rust-service.himg", "--image", "greeter"],
    );
    // The image's own test expects the old greeting: the edited program is the one that runs.
    assert!(
        !o.status.success(),
        "the edited service still printed the old greeting"
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("hi from rust")
            || String::from_utf8_lossy(&o.stderr).contains("hi from rust")
    );
}

#[test]
fn python_app_with_pinned_wheels_in_a_venv() {
    let _one_at_a_time = one_toolchain_at_a_time();
    let project = Project::new();
    let (first, printed) =
        twice_then_docker(&project, "examples/python-app.himg", "python-app", &[]);
    assert_eq!(
        printed,
        "{\"greeting\": \"hello from python\", \"idna\": \"xn--bcher-kva.example\", \"venv\": true}\n"
    );
    assert_eq!(
        outcomes(&first),
        pairs(&[("venv", "built"), ("wheels", "built")]),
        "{first}"
    );

    // Edit the app: no build reruns (the venv is keyed by requirements.txt and the wheels).
    let app = project.path("examples/python-app/app.py");
    let text = std::fs::read_to_string(&app).expect("read app.py");
    std::fs::write(&app, text.replace("hello from python", "hi from python")).expect("edit");
    let edited = build(
        &project,
        "examples/python-app.himg",
        "python-app",
        "store-a",
        "a",
    );
    // Not even looked at: the venv's layer is the same, so nothing below it is needed.
    assert_eq!(
        outcomes(&edited),
        pairs(&[("venv", "skipped"), ("wheels", "skipped")]),
        "{edited}"
    );
    assert!(edited["built_by_kind"].get("build").is_none(), "{edited}");
}

#[test]
fn go_program_with_modules() {
    let _one_at_a_time = one_toolchain_at_a_time();
    let project = Project::new();
    let (first, printed) =
        twice_then_docker(&project, "examples/go-app.himg", "greeter-go", &["de-CH"]);
    assert_eq!(printed, "hello from go: de-CH is Swiss High German\n");
    assert_eq!(
        outcomes(&first),
        pairs(&[("greeter-go", "built")]),
        "{first}"
    );
}
