//! Workspaces (issue 10/11, item 1 and 2): `himg lock DIR` and `himg build DIR` handle every
//! `.himg` file under a directory as one — imports across files, dependency order, one session
//! (each suite's InRelease fetched once, each index parsed once), one report with a row per image,
//! and only the images whose inputs changed built again. Hermetic: a signed fixture repository on
//! 127.0.0.1.

mod common;
#[allow(dead_code)]
mod support;

use std::process::Output;

use common::{Project, assert_success};
use serde_json::Value;
use support::{DebBuilder, RepoBuilder, TestKey, serve};

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).expect("json report")
}

/// `(file, image) -> built` of a workspace report's rows.
fn rows(report: &Value) -> Vec<(String, String, bool)> {
    report["images"]
        .as_array()
        .expect("images")
        .iter()
        .map(|r| {
            (
                r["file"].as_str().unwrap_or_default().to_owned(),
                r["image"].as_str().unwrap_or_default().to_owned(),
                r["built"].as_bool().unwrap_or_default(),
            )
        })
        .collect()
}

fn row(file: &str, image: &str, built: bool) -> (String, String, bool) {
    (file.to_owned(), image.to_owned(), built)
}

#[test]
fn a_directory_is_locked_and_built_as_one_workspace() {
    let project = Project::new();
    let key = TestKey::generate("fixture archive");
    let mut repo = RepoBuilder::new();
    repo.sign_with(&key);
    let suite = repo.suite("stable");
    for (name, file) in [
        ("greet-a", "./usr/bin/greet-a"),
        ("greet-b", "./usr/bin/greet-b"),
    ] {
        let deb = DebBuilder::new(name, "1.0", "amd64")
            .file(file, b"#!/bin/sh\necho hi\n", 0o755)
            .build()
            .expect("deb");
        suite.add("main", &deb);
    }
    repo.write(&project.path("repo")).expect("repo");
    let server = serve(&project.path("repo")).expect("serve");

    // A library of shared settings, a base and two products in a subdirectory importing it.
    let ws = project.path("ws");
    std::fs::create_dir_all(ws.join("products/site")).expect("mkdir");
    std::fs::write(ws.join("fixture.gpg"), key.public_keyring()).expect("keyring");
    std::fs::write(
        ws.join("common.himg"),
        format!(
            "let repositories = [{{ name = \"fixture\", url = \"{}\", suites = [\"stable\"], components = [\"main\"], keyring = \"fixture.gpg\" }}]\n",
            server.base_url
        ),
    )
    .expect("common");
    let product = |pkg: &str| {
        format!(
            "let c = import \"../common.himg\"\n\nimage \"{pkg}\" {{\n  repositories = c.repositories\n  packages = [\"{pkg}\"]\n  layer \"site\" {{\n    copy \"site\" {{ to = \"/srv\" }}\n  }}\n}}\n"
        )
    };
    std::fs::write(ws.join("products/a.himg"), product("greet-a")).expect("a");
    std::fs::write(ws.join("products/b.himg"), product("greet-b")).expect("b");
    std::fs::write(ws.join("products/site/index.html"), "hello\n").expect("site");

    let o = project.himg(&["lock", "ws"]);
    assert_success(&o, "himg lock ws");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("products/a.himg.lock") && err.contains("products/b.himg.lock"),
        "{err}"
    );
    // One session: the suite's InRelease was fetched once for both files.
    assert_eq!(
        server.requests("/dists/stable/InRelease"),
        1,
        "{:?}",
        server.request_log()
    );

    let o = project.himg(&[
        "build",
        "ws",
        "--locked",
        "--out",
        "out",
        "--json",
        "--no-sbom",
    ]);
    assert_success(&o, "himg build ws");
    let first = json(&o);
    assert_eq!(
        rows(&first),
        vec![
            row("products/a.himg", "greet-a", true),
            row("products/b.himg", "greet-b", true)
        ],
        "{first}"
    );
    for out in ["out/products/a/index.json", "out/products/b/index.json"] {
        assert!(project.path(out).is_file(), "{out} missing");
    }

    // Nothing changed: nothing is built.
    let o = project.himg(&[
        "build",
        "ws",
        "--locked",
        "--out",
        "out",
        "--json",
        "--no-sbom",
    ]);
    assert_success(&o, "no-op");
    let again = json(&o);
    assert_eq!(again["built"], 0, "{again}");
    assert!(rows(&again).iter().all(|(_, _, built)| !built), "{again}");

    // One product's file changes: only its image is built again.
    std::fs::write(
        ws.join("products/b.himg"),
        product("greet-b").replace("/srv", "/srv/www"),
    )
    .expect("edit b");
    let o = project.himg(&[
        "build",
        "ws",
        "--locked",
        "--out",
        "out",
        "--json",
        "--no-sbom",
    ]);
    assert_success(&o, "after an edit");
    assert_eq!(
        rows(&json(&o)),
        vec![
            row("products/a.himg", "greet-a", false),
            row("products/b.himg", "greet-b", true)
        ]
    );

    // A directory without `.himg` files is refused by name.
    std::fs::create_dir_all(project.path("empty")).expect("mkdir");
    let o = project.himg(&["build", "empty", "--out", "x"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("holds no `.himg` file"));
}
