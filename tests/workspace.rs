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
use support::{DebBuilder, RepoBuilder, TestKey, TestServer, serve};

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

/// `himg build ws --locked --out out --json --no-sbom`, asserting success; its report.
fn build_ws(project: &Project, what: &str) -> Value {
    let o = project.himg(&[
        "build",
        "ws",
        "--locked",
        "--out",
        "out",
        "--json",
        "--no-sbom",
    ]);
    assert_success(&o, what);
    json(&o)
}

fn row(file: &str, image: &str, built: bool) -> (String, String, bool) {
    (file.to_owned(), image.to_owned(), built)
}

/// Writes the fixture repository (`greet-a`, `greet-b`, `greet-c` at `version`) into `dir`.
fn publish(dir: &std::path::Path, key: &TestKey, version: &str) {
    publish_versions(
        dir,
        key,
        &[
            ("greet-a", version),
            ("greet-b", version),
            ("greet-c", version),
        ],
    );
}

/// Writes the fixture repository with these packages at these versions into `dir`.
fn publish_versions(dir: &std::path::Path, key: &TestKey, packages: &[(&str, &str)]) {
    let _ = std::fs::remove_dir_all(dir);
    let mut repo = RepoBuilder::new();
    repo.sign_with(key);
    let suite = repo.suite("trixie");
    for (name, version) in packages {
        let deb = DebBuilder::new(name, version, "amd64")
            .file(
                &format!("./usr/bin/{name}"),
                format!("#!/bin/sh\necho {version}\n").as_bytes(),
                0o755,
            )
            .build()
            .expect("deb");
        suite.add("main", &deb);
    }
    repo.write(dir).expect("repo");
}

/// A product: one package and the files of `site` (next to the file).
fn product(pkg: &str, site: &str) -> String {
    format!(
        "let c = import \"../common.himg\"\n\nimage \"{pkg}\" {{\n  repositories = c.repositories\n  packages = [\"{pkg}\"]\n  layer \"site\" {{\n    copy \"{site}\" {{ to = \"/srv\" }}\n  }}\n  test \"installed\" {{\n    file \"/usr/bin/{pkg}\" {{ type = \"file\" }}\n  }}\n}}\n"
    )
}

/// A workspace `ws/` of a library (`common.himg`, the fixture repository) and products `a`, `b`
/// (and `c` when asked) under `ws/products/`, each with its own site directory.
fn workspace(products: &[&str]) -> (Project, TestServer, TestKey) {
    let project = Project::new();
    let key = TestKey::generate("fixture archive");
    publish(&project.path("repo"), &key, "1.0");
    let server = serve(&project.path("repo")).expect("serve");
    let ws = project.path("ws");
    std::fs::create_dir_all(ws.join("products")).expect("mkdir");
    std::fs::write(ws.join("fixture.gpg"), key.public_keyring()).expect("keyring");
    std::fs::write(
        ws.join("common.himg"),
        format!(
            "let repositories = [{{ name = \"fixture\", url = \"{}\", suites = [\"trixie\"], components = [\"main\"], keyring = \"fixture.gpg\" }}]\n",
            server.base_url
        ),
    )
    .expect("common");
    for p in products {
        let site = format!("site-{p}");
        std::fs::create_dir_all(ws.join("products").join(&site)).expect("mkdir site");
        std::fs::write(
            ws.join("products").join(&site).join("index.html"),
            format!("{p}\n"),
        )
        .expect("site");
        std::fs::write(
            ws.join(format!("products/{p}.himg")),
            product(&format!("greet-{p}"), &site),
        )
        .expect("product");
    }
    (project, server, key)
}

#[test]
fn a_directory_is_locked_and_built_as_one_workspace() {
    let (project, server, key) = workspace(&["a", "b"]);
    let ws = project.path("ws");

    let o = project.himg(&["lock", "ws"]);
    assert_success(&o, "himg lock ws");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("products/a.himg.lock") && err.contains("products/b.himg.lock"),
        "{err}"
    );
    // One session: the suite's InRelease was fetched once for both files.
    assert_eq!(
        server.requests("/dists/trixie/InRelease"),
        1,
        "{:?}",
        server.request_log()
    );

    let first = build_ws(&project, "himg build ws");
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
    let again = build_ws(&project, "no-op");
    assert_eq!(again["built"], 0, "{again}");
    assert!(rows(&again).iter().all(|(_, _, built)| !built), "{again}");

    // One product's file changes: only its image is built again.
    std::fs::write(
        ws.join("products/b.himg"),
        product("greet-b", "site-b").replace("/srv", "/srv/www"),
    )
    .expect("edit b");
    assert_eq!(
        rows(&build_ws(&project, "after an edit")),
        vec![
            row("products/a.himg", "greet-a", false),
            row("products/b.himg", "greet-b", true)
        ]
    );

    // The workspace's tests run as one run.
    let o = project.himg(&["test", "ws", "--json"]);
    assert_success(&o, "himg test ws");
    let tested = json(&o);
    assert_eq!(
        (tested["passed"].as_u64(), tested["failed"].as_u64()),
        (Some(2), Some(0)),
        "{tested}"
    );

    // `update` over the workspace: current, then a package moves in every file.
    let o = project.himg(&["update", "ws", "--check"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    publish(&project.path("repo"), &key, "1.1");
    let o = project.himg(&["update", "ws", "--check", "--json"]);
    assert_eq!(
        o.status.code(),
        Some(10),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let files = json(&o)["files"].as_array().cloned().unwrap_or_default();
    assert_eq!(files.len(), 2);
    assert!(
        files.iter().all(|f| f["updates"][0]["available"] == "1.1"),
        "{files:?}"
    );
    assert_success(&project.himg(&["update", "ws"]), "update ws");
    for lock in ["products/a.himg.lock", "products/b.himg.lock"] {
        let text = std::fs::read_to_string(ws.join(lock)).expect("lock");
        assert!(text.contains("\"1.1\""), "{lock} not moved");
    }

    // A directory without `.himg` files is refused by name.
    std::fs::create_dir_all(project.path("empty")).expect("mkdir");
    let o = project.himg(&["build", "empty", "--out", "x"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("holds no `.himg` file"));
}

/// `(file, image, reasons' kinds)` of the affected images of an `affected --json` answer.
fn affected_rows(o: &Output) -> Vec<(String, String, Vec<String>)> {
    json(o)["images"]
        .as_array()
        .expect("images")
        .iter()
        .filter(|r| r["affected"] == true)
        .map(|r| {
            (
                r["file"].as_str().unwrap_or_default().to_owned(),
                r["image"].as_str().unwrap_or_default().to_owned(),
                r["reasons"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|x| x["kind"].as_str().unwrap_or_default().to_owned())
                    .collect(),
            )
        })
        .collect()
}

fn git(dir: &std::path::Path, args: &[&str]) {
    let o = std::process::Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .output()
        .expect("git");
    assert_success(&o, &format!("git {args:?}"));
}

#[test]
fn affected_names_the_images_a_change_will_rebuild_and_why() {
    common::require_tool("git");
    let (project, _server, key) = workspace(&["a", "b", "c"]);
    let ws = project.path("ws");
    assert_success(&project.himg(&["lock", "ws"]), "lock");

    // Against the store: nothing built yet, every image is affected; after a build, none.
    let o = project.himg(&["affected", "ws", "--json"]);
    assert_success(&o, "affected before a build");
    assert_eq!(
        affected_rows(&o).len(),
        3,
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let o = project.himg(&[
        "build",
        "ws",
        "--locked",
        "--out",
        "out",
        "--no-sbom",
        "--no-policy",
    ]);
    assert_success(&o, "build");
    let o = project.himg(&["affected", "ws", "--json"]);
    assert!(
        affected_rows(&o).is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );

    // Against a revision: three kinds of change, one per product.
    git(&ws, &["init", "-q"]);
    git(&ws, &["add", "-A"]);
    git(&ws, &["commit", "-q", "-m", "fleet"]);
    // a: a package moves (the repository publishes 1.1; only a's lock is refreshed).
    publish(&project.path("repo"), &key, "1.1");
    assert_success(
        &project.himg(&["lock", "ws/products/a.himg", "--project-root", "ws"]),
        "relock a",
    );
    // b: its definition is edited.
    std::fs::write(
        ws.join("products/b.himg"),
        product("greet-b", "site-b").replace("/srv", "/srv/www"),
    )
    .expect("edit b");
    // c: a file it copies is edited.
    std::fs::write(ws.join("products/site-c/index.html"), "c, edited\n").expect("edit c");

    let o = project.himg(&["affected", "ws", "--since", "HEAD", "--json"]);
    assert_success(&o, "affected --since HEAD");
    assert_eq!(
        affected_rows(&o),
        vec![
            (
                "products/a.himg".into(),
                "greet-a".into(),
                vec!["lock-moved".to_owned()]
            ),
            (
                "products/b.himg".into(),
                "greet-b".into(),
                vec!["definition-edited".to_owned()]
            ),
            (
                "products/c.himg".into(),
                "greet-c".into(),
                vec!["source-edited".to_owned()]
            ),
        ],
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    // The text form says the same per image.
    let o = project.himg(&["affected", "ws", "--since", "HEAD"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("products/c.himg greet-c changes (products/site-c/index.html edited)"),
        "{text}"
    );

    // Building then rebuilds exactly those three images' manifests.
    let o = project.himg(&[
        "build",
        "ws",
        "--locked",
        "--out",
        "out",
        "--no-sbom",
        "--no-policy",
        "--json",
    ]);
    assert_success(&o, "rebuild");
    assert!(
        rows(&json(&o)).iter().all(|(_, _, built)| *built),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

/// `himg ARGS` in the project directory with its own store and config directory (no host config).
fn himg_with(project: &Project, store: &str, args: &[&str]) -> Output {
    std::process::Command::new(common::himg_bin())
        .current_dir(project.path(""))
        .env("HIMG_STORE", project.path(store))
        .env("HIMG_CONFIG_DIR", project.path("config"))
        .env_remove("HIMG_SUBSTITUTERS")
        .env_remove("SOURCE_DATE_EPOCH")
        .args(args)
        .output()
        .expect("run himg")
}

/// Beyond one machine (item 8): two runners build their shards of the workspace and push to one
/// `oci://` cache on a registry on 127.0.0.1; an assembling job in a fresh store substitutes
/// everything and gets the digests one machine gets alone.
#[test]
fn two_shards_and_a_shared_cache_give_one_machines_digests() {
    let (project, _server, _key) = workspace(&["a", "b", "c"]);
    assert_success(&himg_with(&project, "store-lock", &["lock", "ws"]), "lock");
    let o = himg_with(
        &project,
        "store-lock",
        &["key", "generate", "ci-1", "--out", "ci-1.secret"],
    );
    assert_success(&o, "key generate");
    let public = String::from_utf8_lossy(&o.stdout).trim().to_owned();
    let registry = common::registry::Registry::start();
    let cache = format!("oci://{}/fleet/cache", registry.host());

    let common_args = ["--locked", "--no-sbom", "--no-policy", "--json"];
    let shard = |n: &str, store: &str| -> Value {
        let out = format!("out-{store}");
        let mut args = vec![
            "build",
            "ws",
            "--shard",
            n,
            "--out",
            &out,
            "--push-to",
            &cache,
        ];
        args.extend_from_slice(&["--sign-key", "ci-1.secret"]);
        args.extend_from_slice(&common_args);
        let o = himg_with(&project, store, &args);
        assert_success(&o, &format!("shard {n}"));
        json(&o)
    };
    let one = shard("1/2", "store-1");
    let two = shard("2/2", "store-2");
    let files = |r: &Value| -> Vec<String> { rows(r).into_iter().map(|(f, _, _)| f).collect() };
    assert_eq!(files(&one), ["products/a.himg", "products/c.himg"]);
    assert_eq!(files(&two), ["products/b.himg"]);

    let mut args = vec![
        "build",
        "ws",
        "--out",
        "assembled",
        "--substituters",
        &cache,
    ];
    args.extend_from_slice(&["--trusted-key", &public]);
    args.extend_from_slice(&common_args);
    let o = himg_with(&project, "store-assemble", &args);
    assert_success(&o, "assemble");
    let assembled = json(&o);
    assert_eq!(
        assembled["built"], 0,
        "everything comes from the shards' cache: {assembled}"
    );

    let mut args = vec!["build", "ws", "--out", "alone"];
    args.extend_from_slice(&common_args);
    let o = himg_with(&project, "store-alone", &args);
    assert_success(&o, "one machine");
    let digests = |r: &Value| -> Vec<String> {
        r["images"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|i| i["digest"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(digests(&assembled), digests(&json(&o)));
    assert_eq!(digests(&assembled).len(), 3);
}

/// Fleet inventory (item 6): which images hold a package (below a version), and which an advisory
/// affects, over a workspace and a layout, in one answer.
#[test]
fn inventory_finds_packages_and_advisories_across_the_fleet() {
    let (project, _server, _key) = workspace(&["a", "b"]);
    assert_success(&project.himg(&["lock", "ws"]), "lock");
    let o = project.himg(&["build", "ws", "--locked", "--out", "out", "--no-policy"]);
    assert_success(&o, "build");
    let images = |args: &[&str]| -> Vec<(String, String, String)> {
        let mut all = vec!["inventory"];
        all.extend_from_slice(args);
        all.push("--json");
        let o = project.himg(&all);
        assert_success(&o, "inventory");
        json(&o)["images"]
            .as_array()
            .expect("rows")
            .iter()
            .map(|r| {
                let s = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
                (s("target"), s("image"), s("version"))
            })
            .collect()
    };
    let row = |t: &str, i: &str, v: &str| (t.to_owned(), i.to_owned(), v.to_owned());
    assert_eq!(
        images(&["ws", "--package", "greet-a"]),
        vec![row("products/a.himg", "greet-a", "1.0")]
    );
    assert!(images(&["ws", "--package", "greet-a", "--below", "1.0"]).is_empty());
    // A layout is read from its dpkg database; a workspace from the stored analyses.
    assert_eq!(
        images(&[
            "ws",
            "out/products/b",
            "--package",
            "greet-b",
            "--below",
            "1.1"
        ]),
        vec![
            row("out/products/b", "greet-b", "1.0"),
            row("products/b.himg", "greet-b", "1.0"),
        ]
    );

    let tracker = serde_json::json!({
        "greet-b": { "CVE-2026-4242": { "releases": { "trixie": {
            "status": "resolved", "fixed_version": "1.1", "urgency": "high"
        } } } }
    });
    std::fs::write(project.path("tracker.json"), tracker.to_string()).expect("tracker");
    assert_success(
        &project.himg(&["vulndb", "import", "tracker.json"]),
        "import",
    );
    assert_eq!(
        images(&["ws", "--advisory", "CVE-2026-4242"]),
        vec![row("products/b.himg", "greet-b", "1.0")]
    );
    let o = project.himg(&["inventory", "ws", "--advisory", "CVE-2026-4242"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("CVE-2026-4242 (high, fixed in 1.1)"),
        "{text}"
    );
}

/// The scheduled pipeline (item 5): `examples/ci/pipeline.sh`, which both CI recipes run, run
/// verbatim twice against a registry on 127.0.0.1 — the fixture repository publishes a security
/// update of one package between the runs. The second run moves that lock only (the update report
/// names the advisory it fixes) and pushes a new digest for the affected image only.
#[test]
fn the_scheduled_pipeline_refreshes_only_what_a_security_update_touches() {
    for recipe in ["github-actions.yml", "gitlab-ci.yml"] {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("examples/ci")
                .join(recipe),
        )
        .expect("recipe");
        assert!(
            text.contains("bash examples/ci/pipeline.sh fleet"),
            "{recipe}"
        );
    }
    let (project, _server, key) = workspace(&["a", "b", "c"]);
    std::fs::rename(project.path("ws"), project.path("fleet")).expect("rename");
    assert_success(&project.himg(&["lock", "fleet"]), "initial locks");
    let tracker = serde_json::json!({
        "greet-a": { "CVE-2026-5000": { "releases": { "trixie": {
            "status": "resolved", "fixed_version": "1.1", "urgency": "high"
        } } } }
    });
    std::fs::write(project.path("advisories.json"), tracker.to_string()).expect("advisories");
    let registry = common::registry::Registry::start();
    let prefix = format!("{}/fleet", registry.host());
    let pipeline = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ci/pipeline.sh");
    let o = std::process::Command::new(common::himg_bin())
        .args(["key", "generate", "release"])
        .env("HIMG_CONFIG_DIR", project.path("config"))
        .output()
        .expect("key generate");
    assert_success(&o, "key generate");
    let run = || -> (Value, Value, Value) {
        let o = std::process::Command::new("bash")
            .arg(&pipeline)
            .args(["fleet", &prefix, "advisories.json"])
            .current_dir(project.path(""))
            .env("HIMG", common::himg_bin())
            .env("PROMOTE_TO", format!("{}/staging", registry.host()))
            .env("SIGN_KEY", "release")
            .env("HIMG_STORE", project.path("store"))
            .env("HIMG_CONFIG_DIR", project.path("config"))
            .env_remove("HIMG_SUBSTITUTERS")
            .env_remove("SOURCE_DATE_EPOCH")
            .output()
            .expect("pipeline");
        assert_success(&o, "examples/ci/pipeline.sh");
        let read = |f: &str| -> Value {
            serde_json::from_str(&std::fs::read_to_string(project.path(f)).expect(f)).expect(f)
        };
        (read("update.json"), read("push.json"), read("promote.json"))
    };
    // What reached the first stage: (destination, digest), with a record of the stage.
    let promoted = |promote: &Value| -> Vec<(String, String)> {
        promote["promoted"]
            .as_array()
            .expect("promoted")
            .iter()
            .map(|p| {
                assert_eq!(p["stage"], "staging", "{p}");
                let s = |k: &str| p[k].as_str().unwrap_or_default().to_owned();
                (s("destination"), s("digest"))
            })
            .collect()
    };
    let digests = |push: &Value| -> Vec<(String, String)> {
        push["pushed"]
            .as_array()
            .expect("pushed")
            .iter()
            .map(|p| {
                let s = |k: &str| p[k].as_str().unwrap_or_default().to_owned();
                (s("reference"), s("digest"))
            })
            .collect()
    };
    let (_, first, staged) = run();
    let before = digests(&first);
    assert_eq!(before.len(), 3, "{first}");
    let staging = |pushed: &[(String, String)]| -> Vec<(String, String)> {
        pushed
            .iter()
            .map(|(r, d)| (r.replace("/fleet/", "/staging/"), d.clone()))
            .collect()
    };
    assert_eq!(promoted(&staged), staging(&before), "{staged}");

    // The archive publishes greet-a 1.1, which fixes CVE-2026-5000; b and c do not move.
    publish_versions(
        &project.path("repo"),
        &key,
        &[("greet-a", "1.1"), ("greet-b", "1.0"), ("greet-c", "1.0")],
    );
    let (update, second, staged) = run();
    let moves: Vec<(String, Vec<String>)> = update["files"]
        .as_array()
        .expect("files")
        .iter()
        .flat_map(|f| f["updates"].as_array().cloned().unwrap_or_default())
        .map(|u| {
            let fixes = u["fixes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f["id"].as_str().map(str::to_owned))
                .collect();
            (
                format!("{} {} -> {}", u["package"], u["locked"], u["available"]),
                fixes,
            )
        })
        .collect();
    assert_eq!(
        moves,
        vec![(
            "\"greet-a\" \"1.0\" -> \"1.1\"".to_owned(),
            vec!["CVE-2026-5000".to_owned()]
        )],
        "{update}"
    );
    let after = digests(&second);
    let changed: Vec<&str> = before
        .iter()
        .zip(&after)
        .filter(|(b, a)| b.1 != a.1)
        .map(|(b, _)| b.0.as_str())
        .collect();
    assert_eq!(
        changed,
        [format!("{prefix}/greet-a:latest")],
        "{first}\n{second}"
    );
    assert_eq!(promoted(&staged), staging(&after), "{staged}");
}

#[test]
fn a_base_the_workspace_publishes_cascades_to_the_files_pinned_on_it() {
    let (project, _server, key) = workspace(&[]);
    let registry = common::registry::Registry::start();
    let host = registry.host();
    let prefix = format!("{host}/fleet");
    let ws = project.path("ws");
    std::fs::write(
        ws.join("base.himg"),
        format!(
            "let c = import \"common.himg\"\n\nimage \"base\" {{\n  repositories = c.repositories\n  packages = [\"greet-a\"]\n  publish = \"{host}/platform/base:stable\"\n}}\n"
        ),
    )
    .expect("base");
    let pushed = |what: &str| -> Vec<(String, String)> {
        let o = project.himg(&["push", "ws", &prefix, "--json"]);
        assert_success(&o, what);
        json(&o)["pushed"]
            .as_array()
            .expect("pushed")
            .iter()
            .map(|p| {
                let s = |k: &str| p[k].as_str().unwrap_or_default().to_owned();
                (s("reference"), s("digest"))
            })
            .collect()
    };
    assert_success(&project.himg(&["lock", "ws"]), "lock the base");
    let first = pushed("publish the base");
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0].0, format!("{host}/platform/base:stable"));
    let old_pin = format!("{host}/platform/base:stable@{}", first[0].1);

    // A product pinned on the published base, by digest; named so that it sorts before the base:
    // the workspace orders it after the file that publishes its base all the same.
    std::fs::write(
        ws.join("app.himg"),
        format!(
            "let c = import \"common.himg\"\n\nimage \"app\" {{\n  from = \"{old_pin}\"\n  repositories = c.repositories\n  packages = [\"greet-b\"]\n  test \"both\" {{\n    file \"/usr/bin/greet-a\" {{ contains = [\"1.1\"] }}\n    file \"/usr/bin/greet-b\" {{ type = \"file\" }}\n  }}\n}}\n"
        ),
    )
    .expect("app");
    assert_success(&project.himg(&["lock", "ws"]), "lock the product");
    let report = build_ws(&project, "first build");
    assert_eq!(
        rows(&report),
        [
            row("base.himg", "base", false),
            row("app.himg", "app", true)
        ],
        "{report}"
    );

    // greet-a moves: the update rebuilds the base and moves the product's pin to it.
    publish_versions(
        &project.path("repo"),
        &key,
        &[("greet-a", "1.1"), ("greet-b", "1.0"), ("greet-c", "1.0")],
    );
    let o = project.himg(&["update", "ws", "--json"]);
    assert_success(&o, "update");
    let update = json(&o);
    let files = update["files"].as_array().expect("files");
    assert!(
        files[0]["file"]
            .as_str()
            .expect("file")
            .ends_with("base.himg"),
        "{update}"
    );
    assert_eq!(files[0]["updates"][0]["package"], "greet-a", "{update}");
    let pin = &files[1]["base_pins"][0];
    assert_eq!(pin["from"], old_pin.as_str(), "{update}");
    assert_eq!(pin["published_by"], "base.himg", "{update}");
    let new_pin = pin["to"].as_str().expect("to").to_owned();
    assert_ne!(new_pin, old_pin);
    assert_eq!(
        pin["packages"],
        serde_json::json!([{"package": "greet-a", "from": "1.0", "to": "1.1"}]),
        "{update}"
    );
    let app = std::fs::read_to_string(ws.join("app.himg")).expect("app");
    assert!(app.contains(&new_pin), "{app}");
    let o = project.himg(&["update", "ws", "--check"]);
    assert!(o.status.success(), "nothing left to move: {o:?}");

    // One build and one push: the base first, at the digest the product is pinned on.
    let report = build_ws(&project, "build after the update");
    assert_eq!(
        rows(&report),
        [
            row("base.himg", "base", false),
            row("app.himg", "app", true)
        ],
        "{report}"
    );
    assert_success(
        &project.himg(&["test", "ws"]),
        "the product runs on the new base",
    );
    let second = pushed("push after the update");
    assert_eq!(second[0].0, format!("{host}/platform/base:stable"));
    assert_eq!(
        format!("{host}/platform/base:stable@{}", second[0].1),
        new_pin
    );
    assert_eq!(second[1].0, format!("{prefix}/app:latest"));
}
