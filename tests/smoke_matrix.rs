//! Smoke matrix: images of common Debian packages, built by himg from the host's mirror, must run
//! their program the way the same packages do when apt installs them (the oracle: `mmdebstrap
//! --variant=apt`, which runs the maintainer scripts). Each case runs one exec-form command with
//! `docker run` in both; the oracle half must pass for the expectation to be fair, and a failing himg
//! case prints what its image lacks next to the oracle (program, accounts, script-made paths).
//!
//! It runs by default and fails on any failing case; `HIMG_SMOKE=report` fails only when the oracle
//! half fails (the himg half is printed), `HIMG_SMOKE=0` leaves it out of a quick local run. `HIMG_SMOKE_CASES=a,b`
//! keeps the cases whose name contains one of the words. Oracle tarballs are cached under
//! `target/smoke-oracle/` keyed by suite and package list (delete them to refresh); one oracle is
//! built per group of cases, with the union of the group's packages.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{assert_success, himg_bin, require_tool};
use himg::image::ImageSource;
use himg::image::model::FileKind;
use sha2::{Digest, Sha256};

const SUITE: &str = "trixie";
/// How long one case may run (a cold JVM or `go build` on a busy 2-core runner takes a while).
const CASE_TIMEOUT_SECS: u64 = 300;
/// Oracle builds and case runs at once.
const ORACLE_JOBS: usize = 2;
const CASE_JOBS: usize = 3;

/// One image of the matrix: built by himg from `packages`; its oracle is its group's.
struct Img {
    name: &'static str,
    group: &'static str,
    packages: &'static [&'static str],
}

const IMAGES: &[Img] = &[
    Img {
        name: "jre",
        group: "jvm",
        packages: &["openjdk-21-jre-headless"],
    },
    Img {
        name: "jdk",
        group: "jvm",
        packages: &["openjdk-21-jdk-headless"],
    },
    Img {
        name: "gcc",
        group: "build",
        // gcc only Recommends a C library's headers (apt installs them by default; himg and the
        // oracle do not install Recommends): a C compile needs both.
        packages: &["gcc", "libc6-dev"],
    },
    Img {
        name: "rustc",
        group: "build",
        packages: &["rustc"],
    },
    Img {
        name: "golang",
        group: "build",
        packages: &["golang-go"],
    },
    Img {
        name: "git",
        group: "build",
        packages: &["git"],
    },
    Img {
        name: "nginx",
        group: "servers",
        packages: &["nginx-light"],
    },
    Img {
        name: "haproxy",
        group: "servers",
        packages: &["haproxy"],
    },
    Img {
        name: "memcached",
        group: "servers",
        packages: &["memcached"],
    },
    Img {
        name: "redis",
        group: "servers",
        packages: &["redis-server"],
    },
    Img {
        name: "postgresql",
        group: "servers",
        // initdb starts `postgres -V` through popen(3), which needs /bin/sh: Debian packages never
        // depend on the Essential shell (apt assumes it), and a himg image has none unless asked.
        packages: &["postgresql-17", "dash"],
    },
    Img {
        name: "psql",
        group: "servers",
        packages: &["postgresql-client-17"],
    },
    Img {
        name: "nodejs",
        group: "scripting",
        packages: &["nodejs"],
    },
    Img {
        name: "php",
        group: "scripting",
        packages: &["php-cli"],
    },
    Img {
        name: "python3",
        group: "scripting",
        packages: &["python3"],
    },
    Img {
        name: "ruby",
        group: "scripting",
        packages: &["ruby"],
    },
    Img {
        name: "perl",
        group: "scripting",
        packages: &["perl"],
    },
    Img {
        name: "sqlite3",
        group: "scripting",
        packages: &["sqlite3"],
    },
    Img {
        name: "openssl",
        group: "scripting",
        packages: &["openssl", "ca-certificates"],
    },
];

/// What a passing run prints (on top of exit code 0).
enum Expect {
    Exit0,
    Contains(&'static str),
    Check(fn(&str) -> Result<(), String>),
}

/// How a case runs: one exec-form command, or nginx detached and fetched over HTTP from the host.
#[derive(PartialEq)]
enum Mode {
    Run,
    HttpGet,
}

struct Case {
    name: &'static str,
    image: &'static str,
    cmd: &'static [&'static str],
    user: Option<&'static str>,
    /// A directory of tests/smoke/src mounted read-only at /src.
    src: Option<&'static str>,
    workdir: Option<&'static str>,
    env: &'static [&'static str],
    expect: Expect,
    mode: Mode,
}

const fn case(
    name: &'static str,
    image: &'static str,
    cmd: &'static [&'static str],
    expect: Expect,
) -> Case {
    Case {
        name,
        image,
        cmd,
        user: None,
        src: None,
        workdir: None,
        env: &[],
        expect,
        mode: Mode::Run,
    }
}

const fn as_user(mut c: Case, user: &'static str) -> Case {
    c.user = Some(user);
    c
}

const fn with_src(mut c: Case, src: &'static str) -> Case {
    c.src = Some(src);
    c
}

fn keystore_has_100_entries(out: &str) -> Result<(), String> {
    let n = out
        .lines()
        .find_map(|l| {
            l.strip_prefix("Your keystore contains ")
                .and_then(|r| r.split_whitespace().next())
                .and_then(|n| n.parse::<u32>().ok())
        })
        .ok_or("no `Your keystore contains N entries` line")?;
    if n >= 100 {
        Ok(())
    } else {
        Err(format!("only {n} entries in the cacerts keystore"))
    }
}

fn php_ini_loaded(out: &str) -> Result<(), String> {
    let line = out
        .lines()
        .find(|l| l.starts_with("Loaded Configuration File:"))
        .ok_or("no `Loaded Configuration File:` line")?;
    if line.contains("/php.ini") {
        Ok(())
    } else {
        Err(format!("no php.ini loaded: `{line}`"))
    }
}

fn php_has_ctype(out: &str) -> Result<(), String> {
    if out.lines().any(|l| l.trim() == "ctype") {
        Ok(())
    } else {
        Err("`php -m` does not list ctype".into())
    }
}

fn http_200(out: &str) -> Result<(), String> {
    match out.lines().next() {
        Some(l) if l.starts_with("HTTP/1.1 200") && out.contains("nginx") => Ok(()),
        other => Err(format!(
            "status line {other:?}, wanted HTTP/1.1 200 from nginx"
        )),
    }
}

const CASES: &[Case] = &[
    case(
        "java-version",
        "jre",
        &["java", "-version"],
        Expect::Contains("openjdk version \"21"),
    ),
    case(
        "keytool-cacerts",
        "jre",
        &["keytool", "-list", "-cacerts", "-storepass", "changeit"],
        Expect::Check(keystore_has_100_entries),
    ),
    with_src(
        case(
            "java-source",
            "jdk",
            &["java", "/src/Hello.java"],
            Expect::Contains("hello from java 21"),
        ),
        "java",
    ),
    case(
        "node-tmp-userinfo",
        "nodejs",
        &[
            "node",
            "-e",
            "const fs = require('fs'), os = require('os'); fs.writeFileSync('/tmp/n.txt', 'written'); \
             console.log(fs.readFileSync('/tmp/n.txt', 'utf8'), os.userInfo().username)",
        ],
        Expect::Contains("written root"),
    ),
    case(
        "nginx-t",
        "nginx",
        &["nginx", "-t"],
        Expect::Contains("test is successful"),
    ),
    Case {
        mode: Mode::HttpGet,
        ..case(
            "nginx-http",
            "nginx",
            &["nginx", "-g", "daemon off;"],
            Expect::Check(http_200),
        )
    },
    case(
        "php-ini",
        "php",
        &["php", "--ini"],
        Expect::Check(php_ini_loaded),
    ),
    case(
        "php-ctype",
        "php",
        &["php", "-m"],
        Expect::Check(php_has_ctype),
    ),
    case(
        "python3-ssl-sqlite-tmp",
        "python3",
        &[
            "python3",
            "-c",
            "import sqlite3, ssl, tempfile; ssl.create_default_context(); \
             print(sqlite3.connect(':memory:').execute('select 1 + 1').fetchone()[0], tempfile.mkdtemp())",
        ],
        Expect::Contains("2 /tmp/"),
    ),
    case(
        "ruby-openssl-tmpdir",
        "ruby",
        &[
            "ruby",
            "-ropenssl",
            "-rtmpdir",
            "-e",
            "puts OpenSSL::OPENSSL_LIBRARY_VERSION; Dir.mktmpdir { |d| puts d }",
        ],
        Expect::Contains("/tmp/d"),
    ),
    case(
        "perl-getpwuid",
        "perl",
        &["perl", "-e", "print scalar(getpwuid(0)), qq(\\n)"],
        Expect::Contains("root"),
    ),
    case(
        "psql-version",
        "psql",
        &["psql", "--version"],
        Expect::Contains("psql (PostgreSQL) 17"),
    ),
    as_user(
        case(
            "initdb",
            "postgresql",
            &["/usr/lib/postgresql/17/bin/initdb", "-D", "/tmp/db"],
            Expect::Contains("Success"),
        ),
        "postgres",
    ),
    as_user(
        case(
            "redis-version",
            "redis",
            &["redis-server", "--version"],
            Expect::Contains("Redis server v="),
        ),
        "redis",
    ),
    case(
        "git-init",
        "git",
        &["git", "init", "/tmp/r"],
        Expect::Contains("Initialized empty Git repository"),
    ),
    with_src(
        case(
            "gcc-compile",
            "gcc",
            &["gcc", "-o", "/tmp/h", "/src/h.c"],
            Expect::Exit0,
        ),
        "c",
    ),
    case(
        "cc-version",
        "gcc",
        &["cc", "--version"],
        Expect::Contains("Free Software Foundation"),
    ),
    with_src(
        case(
            "rustc-compile",
            "rustc",
            &["rustc", "-o", "/tmp/h", "/src/h.rs"],
            Expect::Exit0,
        ),
        "rust",
    ),
    Case {
        src: Some("go"),
        workdir: Some("/src"),
        env: &[
            "GOCACHE=/tmp/gocache",
            "GOPATH=/tmp/gopath",
            "GOTOOLCHAIN=local",
            "GOFLAGS=-buildvcs=false",
        ],
        ..case(
            "go-build",
            "golang",
            &["go", "build", "-o", "/tmp/h", "."],
            Expect::Exit0,
        )
    },
    case(
        "sqlite3-query",
        "sqlite3",
        &["sqlite3", ":memory:", "select 6 * 7;"],
        Expect::Contains("42"),
    ),
    as_user(
        case(
            "memcached-version",
            "memcached",
            &["memcached", "-V"],
            Expect::Contains("memcached 1."),
        ),
        "memcache",
    ),
    case(
        "haproxy-check",
        "haproxy",
        &["haproxy", "-c", "-f", "/etc/haproxy/haproxy.cfg"],
        Expect::Exit0,
    ),
    case(
        "openssl-ca-bundle",
        "openssl",
        &[
            "openssl",
            "x509",
            "-noout",
            "-subject",
            "-in",
            "/etc/ssl/certs/ca-certificates.crt",
        ],
        Expect::Contains("subject="),
    ),
];

/// The outcome of one case on one side.
#[derive(Clone)]
struct Outcome {
    output: String,
    verdict: Result<(), String>,
    secs: f64,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .to_path_buf()
}

fn img(name: &str) -> &'static Img {
    IMAGES
        .iter()
        .find(|i| i.name == name)
        .unwrap_or_else(|| panic!("no image {name}"))
}

/// The union of a group's packages, sorted.
fn group_packages(group: &str) -> Vec<&'static str> {
    let set: BTreeSet<&str> = IMAGES
        .iter()
        .filter(|i| i.group == group)
        .flat_map(|i| i.packages.iter().copied())
        .collect();
    set.into_iter().collect()
}

/// The cache key of an oracle: also what tests/smoke/compare.sh uses, so both share tarballs.
fn oracle_key(packages: &[&str]) -> String {
    let mut text = format!("{SUITE}\n");
    for p in packages {
        text.push_str(p);
        text.push('\n');
    }
    let hex = format!("{:x}", Sha256::digest(text.as_bytes()));
    hex[..16].to_string()
}

fn oracle_tarball(group: &str) -> PathBuf {
    target_dir().join("smoke-oracle").join(format!(
        "{SUITE}-{}.tar",
        oracle_key(&group_packages(group))
    ))
}

fn oracle_tag(group: &str) -> String {
    format!("himg-smoke-oracle:{}", oracle_key(&group_packages(group)))
}

fn run_id() -> String {
    format!("{}", std::process::id())
}

/// Builds (unless cached) and imports one group's oracle; returns (seconds, whether it was cached).
fn build_oracle(group: &str) -> (f64, bool) {
    let start = Instant::now();
    let tarball = oracle_tarball(group);
    let cached = tarball.is_file();
    if !cached {
        std::fs::create_dir_all(tarball.parent().expect("parent")).expect("mkdir smoke-oracle");
        let part = tarball.with_extension("tar.part");
        let o = Command::new("mmdebstrap")
            .args(["--quiet", "--variant=apt", "--format=tar"])
            .arg(format!(
                "--keyring={}",
                repo()
                    .join("examples/keys/debian-archive-keyring.gpg")
                    .display()
            ))
            .arg(format!("--include={}", group_packages(group).join(",")))
            .arg(SUITE)
            .arg(&part)
            .output()
            .expect("run mmdebstrap");
        assert_success(&o, &format!("mmdebstrap (oracle of group {group})"));
        std::fs::rename(&part, &tarball).expect("rename oracle tarball");
    }
    let tag = oracle_tag(group);
    let present = Command::new("docker")
        .args(["image", "inspect", &tag])
        .output()
        .expect("docker image inspect");
    if !present.status.success() {
        let o = Command::new("docker")
            .arg("import")
            .arg(&tarball)
            .arg(&tag)
            .output()
            .expect("docker import");
        assert_success(&o, &format!("docker import of the {group} oracle"));
    }
    (start.elapsed().as_secs_f64(), cached)
}

/// The .himg of the selected images: one image per matrix image, the examples' repositories.
fn himg_file(images: &[&Img]) -> String {
    let mut s =
        String::from("# Generated by tests/smoke_matrix.rs.\nlet d = import \"debian.himg\"\n");
    for i in images {
        let pkgs: Vec<String> = i.packages.iter().map(|p| format!("\"{p}\"")).collect();
        s.push_str(&format!(
            "\nimage \"{}\" {{\n  repositories = d.repositories\n  packages = [{}]\n}}\n",
            i.name,
            pkgs.join(", ")
        ));
    }
    s
}

struct HimgBuild {
    layout: PathBuf,
    /// Docker tag of each image.
    tags: BTreeMap<String, String>,
    report: serde_json::Value,
    lock_secs: f64,
    build_secs: f64,
    load_secs: f64,
}

/// Locks and builds every selected image in one himg invocation each, then loads them into Docker.
fn build_himg(dir: &Path, images: &[&Img]) -> HimgBuild {
    std::fs::copy(repo().join("examples/debian.himg"), dir.join("debian.himg"))
        .expect("copy debian.himg");
    common::copy_dir(&repo().join("examples/keys"), &dir.join("keys"));
    std::fs::write(dir.join("smoke.himg"), himg_file(images)).expect("write smoke.himg");
    let store = std::env::var_os("HIMG_SMOKE_STORE")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("smoke-store"));
    let himg = |args: &[&str]| {
        Command::new(himg_bin())
            .current_dir(dir)
            .env("HIMG_STORE", &store)
            .env_remove("SOURCE_DATE_EPOCH")
            .args(args)
            .output()
            .expect("run himg")
    };
    // The lock of this exact .himg is kept under target/ and reused while the mirror still has its
    // versions (a stable point release or security update removes superseded .debs: then relock).
    let text = std::fs::read_to_string(dir.join("smoke.himg")).expect("read smoke.himg");
    let cached_lock = target_dir()
        .join("smoke-lock")
        .join(format!("{:x}.lock", Sha256::digest(text.as_bytes())));
    let build = || {
        himg(&[
            "build",
            "smoke.himg",
            "--locked",
            "--out",
            "layout",
            "--json",
        ])
    };
    let lock = || {
        let t = Instant::now();
        assert_success(
            &himg(&["lock", "smoke.himg"]),
            "himg lock smoke.himg (needs the host's Debian mirror)",
        );
        t.elapsed().as_secs_f64()
    };
    let mut lock_secs = 0.0;
    let t = Instant::now();
    let mut o = None;
    if std::fs::copy(&cached_lock, dir.join("smoke.himg.lock")).is_ok() {
        let first = build();
        if first.status.success() {
            o = Some(first);
        }
    }
    let o = match o {
        Some(o) => o,
        None => {
            lock_secs = lock();
            build()
        }
    };
    assert_success(&o, "himg build smoke.himg");
    let build_secs = t.elapsed().as_secs_f64() - lock_secs;
    std::fs::create_dir_all(cached_lock.parent().expect("parent")).expect("mkdir smoke-lock");
    std::fs::copy(dir.join("smoke.himg.lock"), &cached_lock).expect("keep the lock");
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("build --json");

    // Loaded under a tag naming the image digest: an image Docker already has is not copied again.
    let t = Instant::now();
    let layout = dir.join("layout");
    let mut tags = BTreeMap::new();
    for i in images {
        let digest = common::image(&report, i.name)["digest"]
            .as_str()
            .unwrap_or_default()
            .trim_start_matches("sha256:")
            .to_owned();
        let tag = format!("himg-smoke-{}:{}", i.name, &digest[..digest.len().min(16)]);
        let present = Command::new("docker")
            .args(["image", "inspect", &tag])
            .output()
            .expect("docker image inspect");
        if !present.status.success() {
            let o = Command::new("skopeo")
                .arg("copy")
                .arg("--quiet")
                .arg(format!("oci:{}:{}", layout.display(), i.name))
                .arg(format!("docker-daemon:{tag}"))
                .output()
                .expect("run skopeo");
            assert_success(&o, &format!("skopeo copy of image {} into Docker", i.name));
        }
        tags.insert(i.name.to_owned(), tag);
    }
    HimgBuild {
        layout,
        report,
        tags,
        lock_secs,
        build_secs,
        load_secs: t.elapsed().as_secs_f64(),
    }
}

fn container_name(case: &Case, side: &str) -> String {
    format!("himg-smoke-{}-{}-{side}", run_id(), case.name)
}

fn docker_rm(name: &str) {
    let _ = Command::new("docker").args(["rm", "-f", name]).output();
}

/// `docker run` of one case (network none, default writable rootfs), bounded by CASE_TIMEOUT_SECS.
fn run_case(case: &Case, image_ref: &str, side: &str) -> Outcome {
    let start = Instant::now();
    let name = container_name(case, side);
    let mut cmd = Command::new("timeout");
    cmd.arg(CASE_TIMEOUT_SECS.to_string())
        .args(["docker", "run", "--name", &name]);
    if case.mode == Mode::HttpGet {
        cmd.args(["-d", "-p", "127.0.0.1::80"]);
    } else {
        cmd.args(["--network", "none"]);
    }
    if let Some(u) = case.user {
        cmd.args(["--user", u]);
    }
    if let Some(src) = case.src {
        cmd.arg("-v").arg(format!(
            "{}:/src:ro",
            repo().join("tests/smoke/src").join(src).display()
        ));
    }
    if let Some(w) = case.workdir {
        cmd.args(["--workdir", w]);
    }
    for e in case.env {
        cmd.args(["--env", e]);
    }
    cmd.arg(image_ref).args(case.cmd);
    let o = cmd.output().expect("run docker");
    let mut output = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let mut code = o.status.code();
    if case.mode == Mode::HttpGet && code == Some(0) {
        let got = http_get(&name);
        let logs = Command::new("docker")
            .args(["logs", &name])
            .output()
            .expect("docker logs");
        output = format!(
            "{}\n--- container log\n{}{}",
            got.as_deref().unwrap_or_else(|e| e),
            String::from_utf8_lossy(&logs.stdout),
            String::from_utf8_lossy(&logs.stderr)
        );
        code = Some(if got.is_ok() { 0 } else { 1 });
    }
    docker_rm(&name);
    let verdict = match code {
        Some(0) => match &case.expect {
            Expect::Exit0 => Ok(()),
            Expect::Contains(s) if output.contains(s) => Ok(()),
            Expect::Contains(s) => Err(format!("output lacks `{s}`")),
            Expect::Check(f) => f(&output),
        },
        Some(124) => Err(format!("timed out after {CASE_TIMEOUT_SECS}s")),
        Some(c) => Err(format!("exit {c}")),
        None => Err("killed".into()),
    };
    Outcome {
        output,
        verdict,
        secs: start.elapsed().as_secs_f64(),
    }
}

/// GET / from the detached container's published port, retried for 30 s; the response head.
fn http_get(container: &str) -> Result<String, String> {
    let mut last = String::from("no attempt");
    for _ in 0..60 {
        std::thread::sleep(Duration::from_millis(500));
        let running = Command::new("docker")
            .args(["inspect", "-f", "{{.State.Running}}", container])
            .output()
            .expect("docker inspect");
        if String::from_utf8_lossy(&running.stdout).trim() != "true" {
            return Err(format!("the container exited ({last})"));
        }
        let port = Command::new("docker")
            .args(["port", container, "80/tcp"])
            .output()
            .expect("docker port");
        let port = String::from_utf8_lossy(&port.stdout);
        let Some(addr) = port.lines().find(|l| l.starts_with("127.0.0.1:")) else {
            last = "no published port".into();
            continue;
        };
        match fetch(addr.trim()) {
            Ok(head) => return Ok(head),
            Err(e) => last = e,
        }
    }
    Err(format!("no HTTP answer in 30 s: {last}"))
}

fn fetch(addr: &str) -> Result<String, String> {
    let mut s = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).map_err(|e| e.to_string())?;
    if buf.is_empty() {
        return Err("empty answer".into());
    }
    let text = String::from_utf8_lossy(&buf);
    let head = text
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .replace('\r', "");
    Ok(head)
}

/// A filesystem tree for comparing: path (no leading slash) to node.
#[derive(Default)]
struct Tree {
    nodes: BTreeMap<String, Node>,
    passwd: String,
    group: String,
    /// Paths dpkg lists as shipped by a package (oracle only).
    listed: BTreeSet<String>,
}

#[derive(Clone, PartialEq)]
enum Node {
    Dir,
    File,
    Link(String),
}

/// Resolves `path` inside `tree`, following symlinks; the final path, or where it breaks.
fn resolve(tree: &Tree, path: &str) -> Result<String, String> {
    let mut pending: Vec<String> = path.split('/').rev().map(str::to_owned).collect();
    let mut cur: Vec<String> = Vec::new();
    let mut chain = Vec::new();
    let mut hops = 0;
    while let Some(c) = pending.pop() {
        if c.is_empty() || c == "." {
            continue;
        }
        if c == ".." {
            cur.pop();
            continue;
        }
        cur.push(c);
        let p = cur.join("/");
        match tree.nodes.get(&p) {
            None => {
                let via = if chain.is_empty() {
                    String::new()
                } else {
                    format!(" (via {})", chain.join(", "))
                };
                return Err(format!("/{p} missing{via}"));
            }
            Some(Node::Link(t)) => {
                hops += 1;
                if hops > 40 {
                    return Err(format!("symlink loop at /{p}"));
                }
                chain.push(format!("/{p} -> {t}"));
                cur.pop();
                if t.starts_with('/') {
                    cur.clear();
                }
                pending.extend(t.split('/').rev().map(str::to_owned));
            }
            Some(_) => {}
        }
    }
    Ok(format!("/{}", cur.join("/")))
}

const PATH_DIRS: &[&str] = &[
    "usr/local/sbin",
    "usr/local/bin",
    "usr/sbin",
    "usr/bin",
    "sbin",
    "bin",
];

/// Where the program of a command is found (Docker's default PATH), as `path => resolved`.
fn find_program(tree: &Tree, prog: &str) -> Result<(String, String), String> {
    let candidates: Vec<String> = if prog.contains('/') {
        vec![prog.trim_start_matches('/').to_owned()]
    } else {
        PATH_DIRS.iter().map(|d| format!("{d}/{prog}")).collect()
    };
    let mut errs = Vec::new();
    for c in &candidates {
        match resolve(tree, c) {
            Ok(r) if matches!(tree.nodes.get(r.trim_start_matches('/')), Some(Node::File)) => {
                return Ok((format!("/{c}"), r));
            }
            Ok(r) => errs.push(format!("/{c} resolves to {r}, not a file")),
            Err(e) => errs.push(e),
        }
    }
    Err(errs.join("; "))
}

fn names(db: &str) -> BTreeSet<String> {
    db.lines()
        .filter_map(|l| l.split(':').next())
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Reads a mmdebstrap tarball: every path, /etc/passwd, /etc/group and dpkg's file lists.
fn oracle_tree(tarball: &Path) -> Tree {
    let file = std::fs::File::open(tarball).expect("open oracle tarball");
    let mut archive = tar::Archive::new(file);
    let mut tree = Tree::default();
    for entry in archive.entries_with_seek().expect("read oracle tarball") {
        let mut entry = entry.expect("oracle tar entry");
        let path = entry
            .path()
            .expect("entry path")
            .to_string_lossy()
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_owned();
        if path.is_empty() || path == "." {
            continue;
        }
        let kind = entry.header().entry_type();
        let node = if kind.is_dir() {
            Node::Dir
        } else if kind.is_symlink() {
            Node::Link(
                entry
                    .link_name()
                    .ok()
                    .flatten()
                    .map(|l| l.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            )
        } else {
            Node::File
        };
        if node == Node::File {
            let want = path == "etc/passwd"
                || path == "etc/group"
                || (path.starts_with("var/lib/dpkg/info/") && path.ends_with(".list"));
            if want {
                let mut text = String::new();
                let _ = entry.read_to_string(&mut text);
                match path.as_str() {
                    "etc/passwd" => tree.passwd = text,
                    "etc/group" => tree.group = text,
                    _ => tree
                        .listed
                        .extend(text.lines().map(|l| l.trim_start_matches('/').to_owned())),
                }
            }
        }
        tree.nodes.insert(path, node);
    }
    tree
}

fn himg_tree(src: &ImageSource, view: &himg::image::model::ImageView) -> Tree {
    let mut tree = Tree::default();
    for (path, entry) in &view.files {
        let node = match &entry.kind {
            FileKind::Dir => Node::Dir,
            FileKind::Symlink { target } => Node::Link(target.clone()),
            _ => Node::File,
        };
        tree.nodes
            .insert(path.trim_start_matches('/').to_owned(), node);
    }
    let read = |p: &str| {
        src.read_file(view, p)
            .ok()
            .flatten()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    tree.passwd = read("etc/passwd");
    tree.group = read("etc/group");
    tree
}

/// Paths apt's install has that no package lists (made by maintainer scripts), minus apt's and
/// dpkg's own state and the runtime directories.
fn script_made(oracle: &Tree) -> Vec<&str> {
    const SKIP: &[&str] = &[
        "var/lib/dpkg",
        "var/lib/apt",
        "var/cache/apt",
        "var/cache/debconf",
        "var/cache/ldconfig",
        "var/log",
        "etc/apt",
        "dev",
        "proc",
        "sys",
        "run",
        "tmp",
        "var/tmp",
        "etc/hostname",
        "etc/hosts",
        "etc/resolv.conf",
        "etc/machine-id",
    ];
    oracle
        .nodes
        .keys()
        .filter(|p| !oracle.listed.contains(*p))
        .filter(|p| {
            !SKIP
                .iter()
                .any(|s| *p == s || p.starts_with(&format!("{s}/")))
        })
        .map(String::as_str)
        .collect()
}

/// Directories every image has, whose script-made entries say nothing about one package (the
/// accounts files are compared by name instead).
const GENERIC_DIRS: &[&str] = &[
    "",
    "etc",
    "etc/alternatives",
    "usr",
    "usr/bin",
    "usr/sbin",
    "usr/lib",
    "usr/share",
    "var",
    "var/lib",
    "var/cache",
];

/// Script-made oracle paths missing from the himg image that concern the image's own files: a
/// symlink whose target the image has (alternatives, enabled sites), or an entry in a directory of
/// the image other than the generic ones (ucf-made config files, keystores, state directories).
/// Manual-page alternatives are left out.
fn relevant_missing<'a>(himg: &Tree, oracle: &'a Tree) -> (usize, Vec<&'a str>) {
    let missing: Vec<&str> = script_made(oracle)
        .into_iter()
        .filter(|p| !himg.nodes.contains_key(*p))
        .collect();
    let relevant = missing
        .iter()
        .copied()
        .filter(|p| match &oracle.nodes[*p] {
            Node::Link(_) => resolve(oracle, p).is_ok_and(|r| {
                !r.contains("/man/") && himg.nodes.contains_key(r.trim_start_matches('/'))
            }),
            _ => {
                let parent = p.rsplit_once('/').map_or("", |(d, _)| d);
                !GENERIC_DIRS.contains(&parent) && himg.nodes.contains_key(parent)
            }
        })
        .collect();
    (missing.len(), relevant)
}

/// What one failing case's himg image lacks for its command: the program, absolute paths, the user.
fn explain_case(case: &Case, himg: &Tree, oracle: &Tree) -> String {
    let mut s = format!("  case {} [{}]\n", case.name, case.cmd.join(" "));
    let prog = case.cmd[0];
    match (find_program(oracle, prog), find_program(himg, prog)) {
        (Ok((p, r)), Ok((hp, hr))) => s.push_str(&format!(
            "    program {prog}: oracle {p} => {r}; himg {hp} => {hr} (same)\n"
        )),
        (Ok((p, r)), Err(e)) => {
            let at = resolve(himg, &p).err().unwrap_or(e);
            s.push_str(&format!(
                "    program {prog}: oracle {p} => {r}; himg NOT FOUND: {at}\n"
            ));
        }
        (Err(e), _) => s.push_str(&format!(
            "    program {prog}: not found in the oracle either: {e}\n"
        )),
    }
    for arg in case
        .cmd
        .iter()
        .skip(1)
        .filter(|a| a.starts_with('/') && !a.starts_with("/src") && !a.starts_with("/tmp"))
    {
        let (o, h) = (resolve(oracle, arg), resolve(himg, arg));
        if o.is_ok() != h.is_ok() {
            s.push_str(&format!("    path {arg}: oracle {o:?}; himg {h:?}\n"));
        }
    }
    if let Some(u) = case.user {
        let (o, h) = (
            names(&oracle.passwd).contains(u),
            names(&himg.passwd).contains(u),
        );
        let word = |b: bool| if b { "present" } else { "MISSING" };
        s.push_str(&format!(
            "    user {u}: oracle {}; himg {}\n",
            word(o),
            word(h)
        ));
    }
    s
}

/// What a himg image with failing cases lacks next to its group's oracle: accounts, script-made
/// paths, and the maintainer scripts the build reported as not run.
fn explain_image(image: &Img, himg: &Tree, oracle: &Tree, not_run: &[String]) -> String {
    let mut s = format!(
        "- image {} [{}] vs the {} oracle\n",
        image.name,
        image.packages.join(" "),
        image.group
    );
    if !not_run.is_empty() {
        s.push_str(&format!(
            "  maintainer scripts not run by himg: {}\n",
            not_run.join(", ")
        ));
    }
    if himg.passwd.is_empty() {
        s.push_str("  /etc/passwd: the himg image has none\n");
    }
    let users: Vec<String> = names(&oracle.passwd)
        .difference(&names(&himg.passwd))
        .cloned()
        .collect();
    let groups: Vec<String> = names(&oracle.group)
        .difference(&names(&himg.group))
        .cloned()
        .collect();
    s.push_str(&format!(
        "  users missing: [{}]\n  groups missing: [{}]\n",
        users.join(" "),
        groups.join(" ")
    ));
    let (all, relevant) = relevant_missing(himg, oracle);
    s.push_str(&format!(
        "  script-made paths missing that concern this image's files: {} (of {all} script-made paths of the oracle missing)\n",
        relevant.len()
    ));
    // A directory with many such entries (the CA hash links) is shown by its first three.
    let mut per_dir: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for p in &relevant {
        per_dir
            .entry(p.rsplit_once('/').map_or("", |(d, _)| d))
            .or_default()
            .push(p);
    }
    let mut shown = 0;
    for (dir, paths) in &per_dir {
        let many = paths.len() > 8 && *dir != "etc/alternatives";
        for p in paths.iter().take(if many { 3 } else { paths.len() }) {
            let what = match &oracle.nodes[*p] {
                Node::Dir => "(dir)".to_string(),
                Node::File => "(file)".to_string(),
                Node::Link(t) => format!("-> {t}"),
            };
            s.push_str(&format!("    /{p} {what}\n"));
            shown += 1;
        }
        if many {
            s.push_str(&format!("    … and {} more in /{dir}\n", paths.len() - 3));
        }
        if shown > 80 {
            s.push_str("    … (list cut at 80 lines)\n");
            break;
        }
    }
    s
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| format!("      | {l}\n"))
        .collect()
}

fn status(o: &Outcome) -> String {
    match &o.verdict {
        Ok(()) => format!("pass ({:.1}s)", o.secs),
        Err(e) => format!("FAIL: {e} ({:.1}s)", o.secs),
    }
}

/// Runs `f` over `items` with `jobs` threads; results in item order.
fn parallel<T: Sync, R: Send>(items: &[T], jobs: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = Mutex::new(0usize);
    let results: Mutex<Vec<Option<R>>> = Mutex::new(items.iter().map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| {
                loop {
                    let i = {
                        let mut n = next.lock().expect("lock");
                        let i = *n;
                        *n += 1;
                        i
                    };
                    let Some(item) = items.get(i) else { break };
                    let r = f(item);
                    results.lock().expect("lock")[i] = Some(r);
                }
            });
        }
    });
    results
        .into_inner()
        .expect("lock")
        .into_iter()
        .map(|r| r.expect("every item ran"))
        .collect()
}

#[test]
fn smoke_matrix_himg_images_run_like_apt() {
    let mode = std::env::var("HIMG_SMOKE").unwrap_or_else(|_| "1".into());
    if mode == "0" {
        eprintln!("smoke matrix left out (HIMG_SMOKE=0)");
        return;
    }
    for tool in ["docker", "mmdebstrap", "skopeo", "timeout"] {
        require_tool(tool);
    }
    let info = Command::new("docker")
        .arg("info")
        .output()
        .expect("docker info");
    assert_success(
        &info,
        "docker info (the smoke matrix needs a running Docker engine)",
    );

    let total = Instant::now();
    let filter: Vec<String> = std::env::var("HIMG_SMOKE_CASES")
        .unwrap_or_default()
        .split(',')
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect();
    let cases: Vec<&Case> = CASES
        .iter()
        .filter(|c| filter.is_empty() || filter.iter().any(|w| c.name.contains(w.as_str())))
        .collect();
    assert!(
        !cases.is_empty(),
        "HIMG_SMOKE_CASES={filter:?} selects no case"
    );
    let images: Vec<&Img> = IMAGES
        .iter()
        .filter(|i| cases.iter().any(|c| c.image == i.name))
        .collect();
    let groups: Vec<&str> = images
        .iter()
        .map(|i| i.group)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();

    // The himg build (one lock, one build of every image) runs while the oracles build.
    let dir = tempfile::tempdir().expect("tempdir");
    let (himg_build, oracle_times) = std::thread::scope(|s| {
        let h = s.spawn(|| build_himg(dir.path(), &images));
        let o = parallel(&groups, ORACLE_JOBS, |g| build_oracle(g));
        (h.join().expect("himg build thread"), o)
    });

    let outcomes = parallel(&cases, CASE_JOBS, |c| {
        let oracle = run_case(c, &oracle_tag(img(c.image).group), "oracle");
        let himg = run_case(c, &himg_build.tags[c.image], "himg");
        (oracle, himg)
    });
    let run_secs = total.elapsed().as_secs_f64();

    let mut report = String::new();
    report.push_str(&format!(
        "\n=== ORACLE HALF (mmdebstrap --variant=apt {SUITE}, maintainer scripts run)\n"
    ));
    for (g, (secs, cached)) in groups.iter().zip(&oracle_times) {
        report.push_str(&format!(
            "  group {g:<10} {:>6.1}s {} [{}]\n",
            secs,
            if *cached {
                "(cached tarball)"
            } else {
                "(built)"
            },
            group_packages(g).join(" ")
        ));
    }
    for (c, (o, _)) in cases.iter().zip(&outcomes) {
        report.push_str(&format!("  {:<24} {}\n", c.name, status(o)));
        if o.verdict.is_err() {
            report.push_str(&tail(&o.output, 8));
        }
    }
    report.push_str(&format!(
        "\n=== HIMG HALF (lock {:.1}s (0: the kept lock was still good), build {:.1}s, load into Docker {:.1}s)\n",
        himg_build.lock_secs, himg_build.build_secs, himg_build.load_secs
    ));
    for (c, (_, h)) in cases.iter().zip(&outcomes) {
        report.push_str(&format!("  {:<24} {}\n", c.name, status(h)));
        if h.verdict.is_err() {
            report.push_str(&tail(&h.output, 4));
        }
    }

    // What each failing himg image lacks next to its oracle.
    let failing: Vec<usize> = (0..cases.len())
        .filter(|i| outcomes[*i].1.verdict.is_err())
        .collect();
    if !failing.is_empty() {
        let t = Instant::now();
        report.push_str("\n=== HIMG vs ORACLE (failing himg cases)\n");
        let source = ImageSource::open(&himg_build.layout).expect("open the himg layout");
        let views = source.images().expect("read the himg images");
        let not_run: BTreeMap<String, Vec<String>> = himg_build.report["scripts_not_run"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|e| {
                        let scripts = e["scripts"]
                            .as_array()
                            .map(|a| {
                                a.iter()
                                    .filter_map(|s| s.as_str().map(str::to_owned))
                                    .collect()
                            })
                            .unwrap_or_default();
                        (
                            e["package"].as_str().unwrap_or_default().to_owned(),
                            scripts,
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut oracle_trees: BTreeMap<&str, Tree> = BTreeMap::new();
        for image in IMAGES
            .iter()
            .filter(|i| failing.iter().any(|f| cases[*f].image == i.name))
        {
            let oracle = oracle_trees
                .entry(image.group)
                .or_insert_with(|| oracle_tree(&oracle_tarball(image.group)));
            let Some(view) = views.iter().find(|v| {
                v.name
                    .as_deref()
                    .is_some_and(|n| n == image.name || n.starts_with(&format!("{}:", image.name)))
            }) else {
                report.push_str(&format!("- image {} not found in the layout\n", image.name));
                continue;
            };
            let tree = himg_tree(&source, view);
            let scripts: Vec<String> = view
                .packages
                .iter()
                .filter_map(|p| {
                    not_run
                        .get(&p.name)
                        .map(|s| format!("{} ({})", p.name, s.join(" ")))
                })
                .collect();
            report.push_str(&explain_image(image, &tree, oracle, &scripts));
            for f in failing.iter().filter(|f| cases[**f].image == image.name) {
                report.push_str(&explain_case(cases[*f], &tree, oracle));
            }
        }
        report.push_str(&format!(
            "  (comparison took {:.1}s)\n",
            t.elapsed().as_secs_f64()
        ));
    }
    report.push_str(&format!(
        "\n=== TOTAL {:.1}s (runs done at {run_secs:.1}s)\n",
        total.elapsed().as_secs_f64()
    ));
    eprintln!("{report}");
    if let Ok(path) = std::env::var("HIMG_SMOKE_REPORT") {
        let _ = std::fs::write(path, &report);
    }

    // Older builds' images of the matrix leave Docker; this build's stay for the next run.
    for (name, tag) in &himg_build.tags {
        let repo = format!("himg-smoke-{name}");
        let listed = Command::new("docker")
            .args(["images", &repo, "--format", "{{.Repository}}:{{.Tag}}"])
            .output()
            .expect("docker images");
        for old in String::from_utf8_lossy(&listed.stdout)
            .lines()
            .filter(|t| t != tag)
        {
            let _ = Command::new("docker").args(["rmi", old]).output();
        }
    }
    let oracle_failures: Vec<&str> = cases
        .iter()
        .zip(&outcomes)
        .filter(|(_, (o, _))| o.verdict.is_err())
        .map(|(c, _)| c.name)
        .collect();
    assert!(
        oracle_failures.is_empty(),
        "the oracle fails {oracle_failures:?}: those expectations are unfair (see the report above)"
    );
    if mode != "report" {
        let himg_failures: Vec<&str> = cases
            .iter()
            .zip(&outcomes)
            .filter(|(_, (_, h))| h.verdict.is_err())
            .map(|(c, _)| c.name)
            .collect();
        assert!(
            himg_failures.is_empty(),
            "himg images fail {himg_failures:?} (see the report above)"
        );
    }
}
