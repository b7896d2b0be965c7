//! Live (issue 9/11): `examples/hello.himg` compiles `hello.c` inside himg, in a toolchain image of
//! gcc and libc6-dev from the host's Debian mirror — no host compiler. Two fresh stores give the
//! same digest; the image runs under Docker; editing `hello.c` reruns exactly the compile and what
//! is above it; the provenance names the build step and its environment's packages. Needs the
//! network path to the host's Debian mirror and fails without it.

mod common;

use std::process::Command;

use common::{Project, assert_success, image, require_tool, run_tool};

fn build(project: &Project, store: &str, out: &str) -> serde_json::Value {
    let o = project.himg_in(
        &project.path(""),
        &project.path(store),
        &[
            "build",
            "examples/hello.himg",
            "--locked",
            "--image",
            "hello",
            "--no-sbom",
            "--no-policy",
            "--out",
            out,
            "--json",
        ],
    );
    assert_success(
        &o,
        "himg build examples/hello.himg (needs the host's Debian mirror)",
    );
    serde_json::from_slice(&o.stdout).expect("json")
}

#[test]
fn hello_compiles_inside_himg_reproducibly_and_runs() {
    require_tool("bwrap");
    let project = Project::new();
    // No host compiler involved: the prebuilt program the other tests use is removed.
    std::fs::remove_dir_all(project.path("examples/hello/build")).expect("rm build");
    let o = project.himg(&["lock", "examples/hello.himg"]);
    assert_success(
        &o,
        "himg lock examples/hello.himg (needs the host's Debian mirror)",
    );

    let a = build(&project, "store-a", "a");
    let b = build(&project, "store-b", "b");
    assert_eq!(image(&a, "hello")["digest"], image(&b, "hello")["digest"]);
    assert_eq!(a["builds"][0]["name"], "hello", "{a}");
    assert_eq!(a["builds"][0]["outcome"], "built", "{a}");

    // Edit the program: the compile, its output's selection, its layer, the config and the
    // manifest are built again, nothing else (the toolchain is untouched).
    let c = project.path("examples/hello/hello.c");
    let text = std::fs::read_to_string(&c).expect("read hello.c");
    std::fs::write(&c, text.replace("arg: %s", "argument: %s")).expect("edit hello.c");
    let edited = build(&project, "store-a", "a");
    assert_eq!(
        edited["built_by_kind"],
        serde_json::json!({"build": 1, "copy": 1, "select": 1, "layer": 1, "config": 1, "manifest": 1}),
        "{edited}"
    );

    // It runs under Docker.
    require_tool("docker");
    let o = project.himg_in(
        &project.path(""),
        &project.path("store-a"),
        &[
            "build",
            "examples/hello.himg",
            "--locked",
            "--image",
            "hello",
            "--format",
            "docker-archive",
            "--out",
            "hello.tar",
        ],
    );
    assert_success(&o, "docker-archive");
    let loaded = run_tool(
        Command::new("docker")
            .args(["load", "-i"])
            .arg(project.path("hello.tar")),
    );
    assert!(loaded.contains("hello:latest"), "{loaded}");
    let out = run_tool(Command::new("docker").args([
        "run",
        "--rm",
        "--network",
        "none",
        "hello:latest",
        "x",
    ]));
    let _ = Command::new("docker")
        .args(["rmi", "-f", "hello:latest"])
        .output();
    assert!(out.contains("hello from himg"), "{out}");
    assert!(out.contains("argument: x"), "{out}");

    // The provenance names the build step and the toolchain's packages.
    let o = project.himg_in(
        &project.path(""),
        &project.path("store-a"),
        &["provenance", "examples/hello.himg", "--image", "hello"],
    );
    assert_success(&o, "himg provenance");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("\"buildEnvironment\":\"hello\""), "{text}");
    assert!(
        text.contains("gcc -static -Os -o $out/hello hello.c"),
        "{text}"
    );
}
