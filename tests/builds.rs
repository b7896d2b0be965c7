//! Build derivations end to end, hermetically: an environment image made of the host's busybox
//! and the libraries it links (copied into a scratch project), `build` blocks run in the sandbox,
//! images copying their outputs. What the sandbox gives a command (variables, user, hostname, a
//! read-only root, no network), caching by inputs (a no-op runs nothing; an edited source reruns
//! exactly its build and what uses it; a consumed build is not rerun when only its consumer's
//! sources change), failures with the log's tail and `himg log`, timeouts, `--check` on a
//! deterministic and a non-deterministic build, and two stores giving the same digests.

mod common;
#[allow(dead_code)]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{assert_success, himg_bin, require_tool};
use himg::image::ImageSource;
use serde_json::Value;

/// Busybox applets the test scripts use (each a symlink to busybox in the environment image).
const APPLETS: &[&str] = &[
    "sh", "cat", "echo", "mkdir", "cp", "date", "head", "sleep", "ls", "id", "hostname", "env",
    "touch", "sort", "wget", "chmod", "tr", "od", "printf", "true", "grep",
];

struct BuildProject {
    dir: tempfile::TempDir,
}

impl BuildProject {
    /// A project with `env/` (busybox and its libraries) and `builds.himg` holding `environment`
    /// (the image) followed by `body`.
    fn new(body: &str) -> BuildProject {
        require_tool("busybox");
        require_tool("bwrap");
        let dir = tempfile::tempdir().expect("tempdir");
        let project = BuildProject { dir };
        project.copy_environment();
        project.write("builds.himg", &format!("{}\n{body}", environment_image()));
        project
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn write(&self, rel: &str, text: &str) {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }

    /// Busybox and the shared libraries `ldd` lists for it, under `env/`.
    fn copy_environment(&self) {
        let busybox = which("busybox");
        let libs = self.path("env/lib");
        std::fs::create_dir_all(&libs).expect("mkdir env/lib");
        std::fs::copy(&busybox, self.path("env/busybox")).expect("copy busybox");
        let ldd = Command::new("ldd").arg(&busybox).output().expect("ldd");
        for line in String::from_utf8_lossy(&ldd.stdout).lines() {
            let path = line
                .split_whitespace()
                .find(|w| w.starts_with('/'))
                .map(PathBuf::from);
            let Some(path) = path else { continue };
            let name = path.file_name().expect("file name").to_owned();
            if line.contains("ld-linux") {
                std::fs::copy(&path, self.path("env/ld.so")).expect("copy loader");
            } else {
                std::fs::copy(&path, libs.join(name)).expect("copy library");
            }
        }
    }

    fn himg_with(&self, store: &Path, args: &[&str]) -> Output {
        Command::new(himg_bin())
            .current_dir(self.dir.path())
            .env("HIMG_STORE", store)
            .env_remove("SOURCE_DATE_EPOCH")
            .args(args)
            .output()
            .expect("run himg")
    }

    fn himg(&self, args: &[&str]) -> Output {
        self.himg_with(&self.path("store"), args)
    }

    /// `himg build builds.himg --out OUT --json`, asserting success.
    fn build(&self, out: &str) -> Value {
        let output = self.himg(&[
            "build",
            "builds.himg",
            "--out",
            out,
            "--json",
            "--no-sbom",
            "--no-policy",
        ]);
        assert_success(&output, "himg build");
        serde_json::from_slice(&output.stdout).expect("build --json prints JSON")
    }

    /// A file of image `image` in the layout `out`.
    fn file(&self, out: &str, image: &str, path: &str) -> Option<String> {
        let source = ImageSource::open(&self.path(out)).expect("open layout");
        let views = source.images().expect("images");
        let view = views
            .iter()
            .find(|v| v.name.as_deref() == Some(image))
            .unwrap_or_else(|| panic!("no image {image}"));
        source
            .read_file(view, path)
            .expect("read")
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }
}

fn which(tool: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join(tool))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| panic!("`{tool}` is not installed"))
}

/// The environment image: busybox, its applets, its libraries and loader.
fn environment_image() -> String {
    let mut text = String::from(
        "image \"env\" {\n  copy \"env/busybox\" { to = \"/bin/busybox\", mode = 0o755 }\n  copy \"env/lib\" { to = \"/lib/x86_64-linux-gnu\" }\n  copy \"env/ld.so\" { to = \"/lib64/ld-linux-x86-64.so.2\", mode = 0o755 }\n",
    );
    for applet in APPLETS {
        text.push_str(&format!(
            "  symlink \"/bin/{applet}\" {{ target = \"busybox\" }}\n"
        ));
    }
    text.push_str("}\n");
    text
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn build_outcome(report: &Value, name: &str) -> String {
    report["builds"]
        .as_array()
        .and_then(|b| b.iter().find(|b| b["name"] == name))
        .map(|b| b["outcome"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_else(|| panic!("no build {name} in {report}"))
}

fn built_kinds(report: &Value) -> Value {
    report["built_by_kind"].clone()
}

const SANDBOX_PROBE: &str = r#"
build "probe" {
  environment = images.env
  source "src" {}
  run = """
    mkdir -p $out/bin
    cp greeting.txt $out/bin/greeting
    env | sort > $out/env
    id -u > $out/id
    hostname > $out/hostname
    pwd > $out/pwd
    (touch /bin/x 2>/dev/null && echo writable || echo read-only) > $out/root
    (touch /usr-nope 2>/dev/null && echo writable || echo read-only) >> $out/root
    echo built
    """
  outputs = ["bin", "env", "hostname", "id", "pwd", "root"]
}

image "app" {
  copy builds.probe { path = "bin/greeting", to = "/etc/greeting" }
  copy builds.probe { path = "env", to = "/probe/env" }
  layer "all" { copy builds.probe { to = "/opt/probe" } }
}
"#;

#[test]
fn a_build_runs_in_the_sandbox_and_images_copy_its_outputs() {
    let p = BuildProject::new(SANDBOX_PROBE);
    p.write("src/greeting.txt", "hello from a build\n");
    let report = p.build("out");
    assert_eq!(build_outcome(&report, "probe"), "built", "{report}");
    assert_eq!(
        p.file("out", "app", "etc/greeting").as_deref(),
        Some("hello from a build\n")
    );
    let env = p.file("out", "app", "probe/env").expect("env");
    for line in [
        "HOME=/tmp",
        "LANG=C.UTF-8",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "SOURCE_DATE_EPOCH=1",
        "TMPDIR=/tmp",
        "TZ=UTC",
        "out=/out",
    ] {
        assert!(env.lines().any(|l| l == line), "no `{line}` in:\n{env}");
    }
    assert!(
        !env.contains("HIMG_STORE"),
        "the host's environment leaked:\n{env}"
    );
    let file = |name: &str| {
        p.file("out", "app", &format!("opt/probe/{name}"))
            .unwrap_or_default()
    };
    assert_eq!(file("id"), "0\n");
    assert_eq!(file("hostname"), "himg-sandbox\n");
    assert_eq!(file("pwd"), "/build\n");
    assert_eq!(file("root"), "read-only\nread-only\n");
    assert_eq!(file("bin/greeting"), "hello from a build\n");

    // The log keeps what the command printed, and himg's last line.
    let log = p.himg(&["log", "builds.himg", "probe"]);
    assert_success(&log, "himg log");
    let text = String::from_utf8_lossy(&log.stdout);
    assert!(text.contains("built\n"), "{text}");
    assert!(
        text.contains("himg: the build command ended (exit code 0)"),
        "{text}"
    );

    // A no-op rebuild runs nothing.
    let again = p.build("out2");
    assert_eq!(again["built"], 0, "{again}");
    // Not even looked at: the image above it was found in the store.
    assert_eq!(build_outcome(&again, "probe"), "skipped");
    assert_eq!(
        common::image(&again, "app")["digest"],
        common::image(&report, "app")["digest"]
    );
}

#[test]
fn the_sandbox_has_no_network() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let p = BuildProject::new(&format!(
        r#"
build "net" {{
  environment = images.env
  run = "(wget -q -T 3 -O - http://127.0.0.1:{port}/ && echo reached || echo unreachable) > $out/result"
  outputs = ["result"]
}}
image "app" {{ copy builds.net {{ path = "result", to = "/result" }} }}
"#
    ));
    p.build("out");
    assert_eq!(
        p.file("out", "app", "result").as_deref(),
        Some("unreachable\n")
    );
}

const TWO_STAGES: &str = r#"
build "deps" {
  environment = images.env
  source "deps" {}
  run = "mkdir -p $out/lib && cat dep.txt > $out/lib/dep.txt && cat /proc/sys/kernel/random/uuid > $out/lib/ran"
  outputs = ["lib"]
}

build "app" {
  environment = images.env
  source builds.deps { path = "lib", to = "deps" }
  source "app" { exclude = ["*.md"] }
  run = "cat deps/dep.txt main.txt | grep -v '^#' > $out/app"
  outputs = ["app"]
}

image "app" {
  copy builds.app { path = "app", to = "/app" }
  file "/etc/motd" { text = "hi" }
}
"#;

#[test]
fn editing_a_source_reruns_exactly_its_build_and_what_uses_it() {
    let p = BuildProject::new(TWO_STAGES);
    p.write("deps/dep.txt", "dependency\n");
    p.write("app/main.txt", "application\n");
    p.write("app/README.md", "notes\n");
    let first = p.build("out");
    assert_eq!(build_outcome(&first, "deps"), "built");
    assert_eq!(build_outcome(&first, "app"), "built");
    assert_eq!(
        p.file("out", "app", "app").as_deref(),
        Some("dependency\napplication\n")
    );

    // The application's source changes: its build, its layer, the config and the manifest are
    // built again; the dependencies' build is not (its inputs did not change).
    p.write("app/main.txt", "application v2\n");
    let second = p.build("out");
    assert_eq!(build_outcome(&second, "deps"), "reused", "{second}");
    assert_eq!(build_outcome(&second, "app"), "built", "{second}");
    assert_eq!(
        built_kinds(&second),
        serde_json::json!({"build": 1, "copy": 1, "select": 1, "layer": 1, "config": 1, "manifest": 1}),
        "{second}"
    );
    assert_eq!(
        p.file("out", "app", "app").as_deref(),
        Some("dependency\napplication v2\n")
    );

    // A file the build's source excludes changes nothing at all.
    p.write("app/README.md", "more notes\n");
    let third = p.build("out");
    assert_eq!(third["built"], 0, "{third}");

    // A change that gives the same output: the build runs, everything above it is cut off.
    p.write("app/main.txt", "# a comment\napplication v2\n");
    let fourth = p.build("out");
    assert_eq!(build_outcome(&fourth, "app"), "built", "{fourth}");
    assert_eq!(
        built_kinds(&fourth),
        serde_json::json!({"build": 1, "copy": 1}),
        "{fourth}"
    );
    assert_eq!(
        common::image(&fourth, "app")["digest"],
        common::image(&second, "app")["digest"]
    );
}

#[test]
fn a_failing_build_shows_its_log_tail_and_keeps_the_log() {
    let p = BuildProject::new(
        r#"
build "broken" {
  environment = images.env
  run = "echo compiling step one; echo 'error: something broke' >&2; exit 3"
  outputs = ["x"]
}
image "app" { copy builds.broken { to = "/x" } }
"#,
    );
    let out = p.himg(&["build", "builds.himg", "--out", "out"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("exit code 3"), "{err}");
    assert!(err.contains("error: something broke"), "{err}");
    assert!(err.contains("compiling step one"), "{err}");
    // It had no network (it declares no hash): the hint says how a build downloads.
    assert!(err.contains("declares the `hash` of its outputs"), "{err}");
    let log = p.himg(&["log", "builds.himg"]);
    assert_success(&log, "himg log of a failed build");
    assert!(String::from_utf8_lossy(&log.stdout).contains("error: something broke"));
    assert!(stderr(&log).contains("failed"), "{}", stderr(&log));
}

#[test]
fn a_missing_output_and_a_timeout_are_refused_clearly() {
    let p = BuildProject::new(
        r#"
build "lazy" {
  environment = images.env
  run = "echo nothing > $out/other"
  outputs = ["wanted"]
}
build "slow" {
  environment = images.env
  run = "sleep 60"
  outputs = ["x"]
  timeout = 1
}
image "lazy" { copy builds.lazy { to = "/x" } }
image "slow" { copy builds.slow { to = "/x" } }
"#,
    );
    let out = p.himg(&["build", "builds.himg", "--image", "lazy", "--out", "out"]);
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    assert!(err.contains("declared output `wanted`"), "{err}");
    assert!(err.contains("other"), "{err}");
    // Its log is kept like a failed command's.
    let log = p.himg(&["log", "builds.himg", "lazy"]);
    assert_success(&log, "himg log of a build with a missing output");
    assert!(stderr(&log).contains("failed"), "{}", stderr(&log));

    let started = std::time::Instant::now();
    let out = p.himg(&["build", "builds.himg", "--image", "slow", "--out", "out"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("timeout of 1 s"), "{}", stderr(&out));
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

#[test]
fn check_reruns_builds_and_shows_what_differs() {
    let p = BuildProject::new(
        r#"
build "steady" {
  environment = images.env
  run = "echo same > $out/file"
  outputs = ["file"]
}
build "clock" {
  environment = images.env
  run = "echo stable > $out/stable; cat /proc/sys/kernel/random/uuid > $out/stamp"
  outputs = ["stable", "stamp"]
}
image "steady" { copy builds.steady { to = "/x" } }
image "clock" { copy builds.clock { to = "/x" } }
"#,
    );
    let out = p.himg(&[
        "build",
        "builds.himg",
        "--image",
        "steady",
        "--out",
        "out",
        "--check",
    ]);
    assert_success(&out, "--check of a deterministic build");
    assert!(stderr(&out).contains("same outputs"), "{}", stderr(&out));

    let out = p.himg(&[
        "build",
        "builds.himg",
        "--image",
        "clock",
        "--out",
        "out",
        "--check",
    ]);
    assert_eq!(out.status.code(), Some(14), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("build `clock` is not reproducible"), "{err}");
    assert!(err.contains("stamp:"), "{err}");
    assert!(
        !err.contains("stable:"),
        "only what differs is listed: {err}"
    );
    assert!(
        err.contains("\n-") && err.contains("\n+"),
        "a line diff: {err}"
    );
}

#[test]
fn two_stores_give_the_same_digests() {
    let p = BuildProject::new(TWO_STAGES);
    p.write("deps/dep.txt", "dependency\n");
    p.write("app/main.txt", "application\n");
    let a = p.himg_with(
        &p.path("store-a"),
        &["build", "builds.himg", "--out", "a", "--json"],
    );
    let b = p.himg_with(
        &p.path("store-b"),
        &["build", "builds.himg", "--out", "b", "--json"],
    );
    assert_success(&a, "first store");
    assert_success(&b, "second store");
    let a: Value = serde_json::from_slice(&a.stdout).expect("json");
    let b: Value = serde_json::from_slice(&b.stdout).expect("json");
    assert_eq!(
        common::image(&a, "app")["digest"],
        common::image(&b, "app")["digest"]
    );
}

#[test]
fn a_fetch_gets_the_network_only_with_a_declared_hash_and_must_match_it() {
    let served = tempfile::tempdir().expect("tempdir");
    std::fs::write(served.path().join("data.txt"), "fetched bytes\n").expect("write");
    let server = support::serve(served.path()).expect("serve");
    let url = server.url("/data.txt");
    let fetch = |hash: &str| {
        format!(
            r#"
build "fetch" {{
  environment = images.env
  run = "wget -q -O $out/data.txt {url}"
  outputs = ["data.txt"]
  hash = "{hash}"
}}
image "app" {{ copy builds.fetch {{ path = "data.txt", to = "/data.txt" }} }}
"#
        )
    };
    let p = BuildProject::new(&fetch(&format!("blake3:{}", "0".repeat(64))));
    let out = p.himg(&["build", "builds.himg", "--out", "out"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    let got = err
        .split("hash to `")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .unwrap_or_else(|| panic!("the obtained hash is shown: {err}"))
        .to_owned();
    assert!(err.contains(&format!("set `hash = \"{got}\"`")), "{err}");
    assert!(got.starts_with("blake3:") && got.len() == 7 + 64, "{got}");

    p.write(
        "builds.himg",
        &format!("{}\n{}", environment_image(), fetch(&got)),
    );
    p.build("out");
    assert_eq!(
        p.file("out", "app", "data.txt").as_deref(),
        Some("fetched bytes\n")
    );
    assert_eq!(server.requests("/data.txt"), 2);
    // Pinned by its hash: built once, never fetched again.
    p.build("out2");
    assert_eq!(server.requests("/data.txt"), 2);
}

#[test]
fn build_outputs_travel_through_a_binary_cache() {
    let p = BuildProject::new(TWO_STAGES);
    p.write("deps/dep.txt", "dependency\n");
    p.write("app/main.txt", "application\n");
    let config = p.path("config");
    std::fs::create_dir_all(&config).expect("mkdir config");
    let himg = |store: &str, args: &[&str]| {
        Command::new(himg_bin())
            .current_dir(p.dir.path())
            .env("HIMG_STORE", p.path(store))
            .env("HIMG_CONFIG_DIR", &config)
            .env_remove("HIMG_SUBSTITUTERS")
            .env_remove("SOURCE_DATE_EPOCH")
            .args(args)
            .output()
            .expect("run himg")
    };
    let key = himg("store-a", &["key", "generate", "builds-1"]);
    assert_success(&key, "key generate");
    let key = String::from_utf8_lossy(&key.stdout).trim().to_owned();
    let a = himg("store-a", &["build", "builds.himg", "--out", "a", "--json"]);
    assert_success(&a, "build in A");
    let url = format!("file://{}", p.path("cache").display());
    assert_success(
        &himg("store-a", &["cache", "push", &url, "builds.himg"]),
        "push",
    );

    // B changes only a file beside the build's output in the same layer: the layer is rebuilt
    // from the build's output, which comes from the cache — no build command runs in B.
    let text = std::fs::read_to_string(p.path("builds.himg")).expect("read");
    p.write(
        "builds.himg",
        &text.replace("text = \"hi\"", "text = \"hello\""),
    );
    let b = himg(
        "store-b",
        &[
            "build",
            "builds.himg",
            "--out",
            "b",
            "--json",
            "--substituters",
            &url,
            "--trusted-key",
            &key,
        ],
    );
    assert_success(&b, "build in B");
    let b: Value = serde_json::from_slice(&b.stdout).expect("json");
    assert!(b["built_by_kind"].get("build").is_none(), "{b}");
    assert!(b["substituted"].as_u64().unwrap_or(0) > 0, "{b}");
    assert_eq!(
        p.file("b", "app", "app").as_deref(),
        Some("dependency\napplication\n")
    );
}

#[test]
fn store_gc_sweeps_what_a_killed_build_left() {
    let p = BuildProject::new(SANDBOX_PROBE);
    p.write("src/greeting.txt", "hi\n");
    p.build("out");
    assert!(
        p.path("store/build-roots")
            .read_dir()
            .expect("roots")
            .count()
            > 0
    );
    // What a build killed with SIGKILL leaves: its scratch directory, and a half-extracted root.
    p.write("store/builds/build-killed/work/partial.o", "x");
    p.write("store/build-roots/.tmp-killed/rootfs/bin/sh", "x");
    let gc = p.himg(&["store", "gc"]);
    assert_success(&gc, "store gc");
    assert!(!p.path("store/builds/build-killed").exists());
    assert!(!p.path("store/build-roots/.tmp-killed").exists());
    // The environment of an image still in the store stays.
    assert!(
        p.path("store/build-roots")
            .read_dir()
            .expect("roots")
            .count()
            == 1
    );
}
