//! The command line as a user meets it: check, fmt, eval, graph, store commands, error output and exit
//! codes.

mod common;

use common::{Project, assert_success};

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Every `.himg` under `examples/`, relative to the project.
fn example_files(project: &Project) -> Vec<String> {
    let mut out = Vec::new();
    for dir in [
        "examples",
        "examples/golden",
        "examples/fleet",
        "examples/fleet/products",
    ] {
        for e in std::fs::read_dir(project.path(dir)).expect("examples") {
            let name = e.expect("entry").file_name().to_string_lossy().into_owned();
            if name.ends_with(".himg") {
                out.push(format!("{dir}/{name}"));
            }
        }
    }
    out.sort();
    assert!(out.len() >= 8, "{out:?}");
    out
}

#[test]
fn check_accepts_every_example() {
    let project = Project::new();
    for file in example_files(&project) {
        // The golden product copies from `examples/hello/`: the project is `examples/`.
        let out = project.himg(&["check", "--project-root", "examples", &file]);
        assert_success(&out, &file);
    }
}

#[test]
fn check_reports_a_span_pointed_diagnostic_and_exits_1() {
    let project = Project::new();
    std::fs::write(
        project.path("bad.himg"),
        "image \"x\" {\n  entrypont = [\"/x\"]\n}\n",
    )
    .expect("write");
    let out = project.himg(&["check", "bad.himg"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("error[H"), "{err}");
    assert!(err.contains("bad.himg:2:3"), "{err}");
    assert!(err.contains("entrypont"), "{err}");
    assert!(err.contains("entrypoint"), "did-you-mean missing: {err}");
    // A build of the same file fails the same way and writes nothing.
    let out = project.himg(&["build", "bad.himg", "--out", "o"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!project.path("o").exists());
}

#[test]
fn missing_file_and_unknown_image_are_clear_errors() {
    let project = Project::new();
    let out = project.himg(&["check", "nope.himg"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("error: `nope.himg` does not exist"),
        "{}",
        stderr(&out)
    );

    let out = project.himg(&[
        "build",
        "examples/prebuilt.himg",
        "--image",
        "helo",
        "--out",
        "o",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("no image named `helo`"), "{err}");
    assert!(err.contains("hint: images in this file: `hello`"), "{err}");
}

#[test]
fn usage_errors_exit_2() {
    let project = Project::new();
    let out = project.himg(&["build"]);
    assert_eq!(out.status.code(), Some(2));
    let out = project.himg(&["--help"]);
    assert_success(&out, "--help");
    for sub in ["check", "fmt", "eval", "build", "graph", "store", "why"] {
        let out = project.himg(&[sub, "--help"]);
        assert_success(&out, sub);
    }
}

#[test]
fn fmt_is_idempotent_and_check_mode_reports() {
    let project = Project::new();
    let file = project.path("messy.himg");
    std::fs::write(
        &file,
        "let   x =   \"a\"\n\n\n\nimage \"m\"   {\n      file \"/a\" {   text = x   }\n}\n",
    )
    .expect("write");
    let out = project.himg(&["fmt", "--check", "messy.himg"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let out = project.himg(&["fmt", "messy.himg"]);
    assert_success(&out, "fmt");
    let once = std::fs::read_to_string(&file).expect("read");
    let out = project.himg(&["fmt", "--check", "messy.himg"]);
    assert_success(&out, "fmt --check after fmt");
    let out = project.himg(&["fmt", "messy.himg"]);
    assert_success(&out, "fmt again");
    assert_eq!(once, std::fs::read_to_string(&file).expect("read"));
    // Every example is formatted.
    for f in example_files(&project) {
        let out = project.himg(&["fmt", "--check", &f]);
        assert_success(&out, &f);
    }
}

#[test]
fn eval_prints_the_specs_as_json() {
    let project = Project::new();
    let out = project.himg(&[
        "eval",
        "examples/golden/app.himg",
        "--project-root",
        "examples",
        "--json",
    ]);
    assert_success(&out, "eval");
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    let app = &v["images"][0];
    assert_eq!(app["name"], "app");
    assert_eq!(app["base"]["name"], "platform");
    assert_eq!(app["config"]["exposed_ports"][0], "8080/tcp");
}

#[test]
fn graph_prints_dot_and_json() {
    let project = Project::new();
    let out = project.himg(&["graph", "examples/prebuilt.himg"]);
    assert_success(&out, "graph");
    let dot = stdout(&out);
    assert!(dot.starts_with("digraph himg {"), "{dot}");
    assert!(dot.contains("manifest"), "{dot}");
    let out = project.himg(&["graph", "examples/prebuilt.himg", "--json"]);
    assert_success(&out, "graph --json");
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    let kinds: Vec<&str> = v["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter_map(|n| n["kind"].as_str())
        .collect();
    for k in ["copy", "text", "layer", "config", "manifest"] {
        assert!(kinds.contains(&k), "{kinds:?}");
    }
}

#[test]
fn store_commands_report_roots_info_gc_and_corruption() {
    let project = Project::new();
    project.build("examples/prebuilt.himg", "out");
    let out = project.himg(&["store", "roots", "--json"]);
    assert_success(&out, "store roots");
    assert!(
        stdout(&out).contains("prebuilt.himg#hello"),
        "{}",
        stdout(&out)
    );
    let out = project.himg(&["store", "info", "--json"]);
    assert_success(&out, "store info");
    let out = project.himg(&["store", "verify"]);
    assert_success(&out, "store verify");

    // GC keeps what the root reaches: the next build is still a no-op.
    let out = project.himg(&["store", "gc"]);
    assert_success(&out, "store gc");
    let again = project.build("examples/prebuilt.himg", "out");
    assert_eq!(again["built"], 0, "{again}");

    // Remove the root: GC deletes everything; the next build rebuilds everything, same digest.
    let roots = project.himg(&["store", "roots", "--json"]);
    let roots: serde_json::Value = serde_json::from_slice(&roots.stdout).expect("json");
    let name = roots[0]["name"].as_str().expect("root name").to_string();
    let out = project.himg(&["store", "roots", "--remove", &name]);
    assert_success(&out, "roots --remove");
    let out = project.himg(&["store", "gc", "--json"]);
    assert_success(&out, "gc");
    let rebuilt = project.build("examples/prebuilt.himg", "out");
    assert!(rebuilt["built"].as_u64().unwrap_or(0) > 0);
    assert_eq!(rebuilt["images"][0]["digest"], again["images"][0]["digest"]);

    // Corrupt one OCI blob in the store: verify names it and exits 4.
    let oci = project.store.join("v1/oci/sha256");
    let victim = std::fs::read_dir(&oci)
        .expect("oci dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .max_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .expect("a blob");
    let mut perms = std::fs::metadata(&victim).expect("meta").permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&victim, perms).expect("chmod");
    let mut bytes = std::fs::read(&victim).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&victim, bytes).expect("write");
    let out = project.himg(&["store", "verify"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let name = victim.file_name().and_then(|n| n.to_str()).expect("name");
    assert!(
        stderr(&out).contains(name) || stdout(&out).contains(name),
        "{}",
        stderr(&out)
    );
}

/// `himg lock` and `himg update` on a file none of whose images declares packages say so and
/// write no lock.
#[test]
fn lock_and_update_without_packages_write_no_lock() {
    let project = Project::new();
    for args in [
        &["lock", "examples/prebuilt.himg"][..],
        &["update", "examples/prebuilt.himg"],
    ] {
        let out = project.himg(args);
        assert_success(&out, args[0]);
        assert!(
            stderr(&out).contains("no image of `examples/prebuilt.himg` declares packages"),
            "{}",
            stderr(&out)
        );
        assert!(!project.path("examples/prebuilt.himg.lock").exists());
    }
    let out = project.himg(&["update", "examples/prebuilt.himg", "--json"]);
    assert_success(&out, "update --json");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("update --json");
    assert_eq!(report["written"], false);
    assert_eq!(report["updates"], serde_json::json!([]));
}

#[test]
fn version_names_the_commit() {
    let project = Project::new();
    let out = project.himg(&["--version"]);
    assert_success(&out, "himg --version");
    let text = stdout(&out);
    let version = env!("CARGO_PKG_VERSION");
    assert!(text.starts_with(&format!("himg {version} (")), "{text}");
    let commit = text
        .trim()
        .rsplit_once('(')
        .map(|(_, c)| c.trim_end_matches(')').trim_end_matches("-modified"))
        .unwrap_or_default();
    assert!(
        commit == "unknown"
            || (commit.len() == 12 && commit.bytes().all(|b| b.is_ascii_hexdigit())),
        "{text}"
    );
}

#[test]
fn graph_filters_kinds_clusters_images_and_colours_what_is_stored() {
    let project = Project::new();
    let args = [
        "graph",
        "examples/prebuilt.himg",
        "--kind",
        "layer,manifest",
        "--cluster",
        "--stored",
    ];
    let out = project.himg(&args);
    assert_success(&out, "graph --kind --cluster --stored");
    let dot = stdout(&out);
    let labels: Vec<&str> = dot
        .lines()
        .filter_map(|l| l.split_once("[label=\"").map(|(_, r)| r))
        .collect();
    assert!(!labels.is_empty(), "{dot}");
    assert!(
        labels
            .iter()
            .all(|l| l.starts_with("layer\\n") || l.starts_with("manifest\\n")),
        "{dot}"
    );
    assert!(dot.contains("subgraph cluster_0"), "{dot}");
    // Layers lead to the manifest even though the config between them is left out.
    assert!(dot.contains(" -> "), "{dot}");
    assert!(
        dot.contains("#ffe0b2") && !dot.contains("#c8e6c9"),
        "nothing stored yet: {dot}"
    );
    let built = project.himg(&["build", "examples/prebuilt.himg", "--out", "out"]);
    assert_success(&built, "build");
    let dot = stdout(&project.himg(&args));
    assert!(
        dot.contains("#c8e6c9") && !dot.contains("#ffe0b2"),
        "all stored: {dot}"
    );

    let out = project.himg(&["graph", "examples/prebuilt.himg", "--kind", "layers"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no step kind `layers`") && err.contains("manifest"),
        "{err}"
    );
}
